"""The step-time benchmark behind ``python3 scripts/dev bench`` (benchmarks/step_time.py).

Modules, by concern: ``model`` (modes, cases, variants, samples), ``stats``
(medians, targets), ``instant_tbot`` (the tbot the steps run), ``prepare``
(interpreter, workspaces, endpoints), ``anchor`` (the original JavaScript action,
``--anchor``), ``act_runs`` (interleaved runs through act), ``direct`` (the step
run outside act: import times and the overhead breakdown), ``ship_size``, and
``report`` / ``report_profile`` (what is printed).
"""
