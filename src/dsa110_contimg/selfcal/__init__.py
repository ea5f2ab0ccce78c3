"""Self-calibration of target groups: :func:`.run.selfcal_ms` (options :class:`.run.SelfcalOptions`)."""
