"""Server-free wandb sweeps: the same sweep files a wandb agent runs, run from a directory.

spec.py loads and checks a sweep file, command.py builds a run's command line, store.py keeps the
sweep's directory and runner.py runs it (`python -m alexlab.sweep`). Nothing is imported here, so
that the reports can read a sweep file without loading the runner's Lightning."""
