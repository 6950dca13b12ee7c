"""Keys of a suggested config (never of a training config: search/trainable.py takes them out) that make a trial
continue one of an earlier driver session: the Ray trial it takes over, and whether the study had already
finished it (search/study.py ``StudySearcher.suggest`` sets them).

Their own module: every trial worker reads them, and search/study.py imports Optuna, Tune's searchers and the
study plots (~0.45 s of each worker's start on 2 cores)."""
CONTINUES_KEY = "_continues_trial"
STOPPED_KEY = "_continues_stopped"
