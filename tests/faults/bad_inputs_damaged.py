"""Rows of the bad-input table for splits too small to score and for damaged or foreign files (issue 23's families
2 and 3); tests/faults/bad_inputs.py appends them to its table. Fixtures: tests/faults/damaged_fixtures.py."""
from __future__ import annotations

from tests.faults.bad_input_case import SMOKE, Case

TOO_SMALL = r"the '{split}' split of dataset '{name}' holds {n} motion\(s\) of {total}: retrieval recall needs at " \
            r"least 2.*Fix: give it motions: size it in the data spec"


def too_small(split: str, name: str, n: int, total: int = 30) -> str:
    return TOO_SMALL.format(split=split, name=name, n=n, total=total)


ONE_TRAIN = r"the 'train' split of dataset 'one_motion_train' holds 1 motion\(s\) of 30: contrastive training needs " \
            r"at least 2 per batch.*Fix: give it motions"
DAMAGED_ARGS = r"--resume: .*stored/search_args\.json is damaged: {what}.*Fix: restore the file"
MANIFEST = r"ensemble/manifest\.json: damaged ensemble manifest: {what}.*Fix: rebuild it: python run_ensemble\.py"
CACHE_FILE = r"cache_dir .*cache_file: is a file, not a folder for the dataset and text-feature cache\. " \
             r"Fix: point it at a folder"


def manifest_query(fixture: str, whose: str, named: str) -> Case:
    """A --query of the experiment ``fixture`` builds, whose ensemble manifest is damaged as ``whose`` says."""
    return Case(f"query-{fixture.replace('_', '-')}", f"--query of an ensemble whose {whose}", "run_ensemble.py",
                (f"{{{fixture}}}", "--query", "a person walks"), MANIFEST.format(what=named))


DAMAGED_CASES: tuple[Case, ...] = (
    # splits too small to score: refused with their sizes, before training or Ray, by every entry point
    Case("train-tiny-dataset", "a 5-motion dataset: its hashed val split holds one motion (trained on it before)",
         "python -m core.train", ("--smoke-test", "--data", "{tiny_folder}", "--out", "{tmp}/out"),
         too_small("val", "tiny_folder", 1, 5)),
    Case("train-val-split-one", "a dataset whose val split holds one motion (a traceback before)",
         "python -m core.train", ("--smoke-test", "--data", "{one_motion_val}", "--out", "{tmp}/out"),
         too_small("val", "one_motion_val", 1)),
    Case("search-tiny-dataset", "run_search.py on a 5-motion dataset (ran a whole search and ensemble before)",
         "run_search.py", ("--data", "{tiny_folder}", *SMOKE), too_small("val", "tiny_folder", 1, 5)),
    Case("search-val-split-one", "run_search.py on a dataset whose val split holds one motion", "run_search.py",
         ("--data", "{one_motion_val}", *SMOKE), too_small("val", "one_motion_val", 1)),
    Case("search-test-split-one", "run_search.py, whose ensemble scores the test split, on a one-motion test split",
         "run_search.py", ("--data", "{one_motion_test}", *SMOKE), too_small("test", "one_motion_test", 1)),
    Case("search-eval-data-one-motion", "--eval-data whose test split holds one motion", "run_search.py",
         ("--data", "{raw_features}", "--eval-data", "{one_motion_test}", *SMOKE),
         r"--eval-data .*one_motion_test: its 'test' split holds 1 motion\(s\) of 30; retrieval needs at least 2"),
    Case("train-eval-data-one-motion", "core.train --eval-data whose test split holds one motion",
         "python -m core.train", ("--smoke-test", "--data", "{raw_features}", "--eval-data", "{one_motion_test}",
                                  "--out", "{tmp}/out"),
         r"--eval-data .*one_motion_test: its 'test' split holds 1 motion\(s\) of 30; retrieval needs at least 2"),
    Case("train-train-split-one", "a dataset whose train split holds one motion (no step taken, an untrained model "
         "reported as trained before)", "python -m core.train",
         ("--smoke-test", "--data", "{one_motion_train}", "--out", "{tmp}/out"), ONE_TRAIN),
    Case("search-train-split-one", "run_search.py on a dataset whose train split holds one motion (every trial "
         "took no step before)", "run_search.py", ("--data", "{one_motion_train}", *SMOKE), ONE_TRAIN),
    Case("csv-repeated-column", "captions.csv whose header names 'text' twice (every caption silently became the "
         "3rd column before)", "python -m core.data", ("--data", "{repeated_header}", "--cache-dir", "{tmp}/cache"),
         r"captions\.csv: the header names the column\(s\) \['text'\] more than once.*Fix: name each column once"),
    Case("split-file-empty", "an empty splits/val.txt (val was silently carved out of train before)",
         "python -m core.data", ("--data", "{empty_val_file}", "--cache-dir", "{tmp}/cache"),
         r"splits/val\.txt: the split file lists no id\. Fix: list the val ids one per line, or delete the file"),
    Case("split-file-misnamed", "splits/valid.txt instead of val.txt (its motions were silently in no split before)",
         "python -m core.data", ("--data", "{misnamed_split_file}", "--cache-dir", "{tmp}/cache"),
         r"splits/valid\.txt: a split file this loader does not read: split files are named train\.txt, val\.txt, "
         r"test\.txt\. Fix: rename it"),
    Case("npy-beyond-float32", "a float64 motion of finite values beyond float32's range (numpy's overflow warning "
         "and 'contains NaN/inf' before, of a file that holds none)", "python -m core.data",
         ("--data", "{huge_npy}", "--cache-dir", "{tmp}/cache"),
         r"motions/m10\.npy: this \.npy holds values up to 1e\+300, beyond float32's range.*Fix: check its units"),
    # a stored search_args.json checked against its schema (types and ranges), not only "parses"
    Case("resume-args-string-numbers", "--resume of a search_args.json whose numbers are strings (a TypeError "
         "traceback before)", "run_search.py", ("--resume", "--name", "stored", "--storage", "{stored_string_numbers}"),
         DAMAGED_ARGS.format(what=r"num_samples = '6' is not int\.")),
    Case("resume-args-out-of-range", "--resume of a search_args.json with max_epochs 0", "run_search.py",
         ("--resume", "--name", "stored", "--storage", "{stored_zero_epochs}"),
         DAMAGED_ARGS.format(what=r"--max-epochs: 0 must be >= 1\.")),
    Case("resume-args-bool-seed", "--resume of a search_args.json whose seed is true (a bool passes an int check)",
         "run_search.py", ("--resume", "--name", "stored", "--storage", "{stored_bool_seed}"),
         DAMAGED_ARGS.format(what=r"seed = True is not int\.")),
    Case("resume-args-overrides-object", "--resume of a search_args.json whose overrides are an object, not pairs",
         "run_search.py", ("--resume", "--name", "stored", "--storage", "{stored_bad_overrides}"),
         DAMAGED_ARGS.format(what=r"overrides = \{'lr': 0\.001\} is not tuple")),
    # the study a resumed search continues: a traceback from inside Tune, after Ray started, before
    Case("resume-optuna-db-garbage", "--resume of an experiment whose optuna.db is not a database (a "
         "DatabaseError traceback from inside Tune before)", "run_search.py",
         ("--resume", "--name", "stored", "--storage", "{stored_optuna_garbage}"),
         r"--resume: .*stored/optuna\.db is damaged \(DatabaseError: .*Fix: restore optuna\.db from a copy, or start "
         r"a new --name"),
    Case("resume-optuna-db-empty", "--resume of an experiment whose optuna.db is empty (an IndexError traceback "
         "from inside Tune before)", "run_search.py", ("--resume", "--name", "stored", "--storage",
                                                       "{stored_optuna_empty}"),
         r"--resume: .*stored/optuna\.db is empty: the search's study \(its trials' history\) is gone\. Fix:"),
    # an ensemble manifest checked against what a query reads of it
    manifest_query("manifest_without_selected", "manifest member lacks 'selected' (a KeyError traceback before)",
                   r"member 1 has no 'selected'\."),
    manifest_query("manifest_string_weight", "member weight is a string",
                   r"member 1 'weight' is '1\.0', not a finite number >= 0\."),
    manifest_query("manifest_nothing_selected", "manifest selects no member", r"no member is selected\."),
    manifest_query("manifest_member_list", "manifest member is a list", r"member 1 is list, not an object\."),
    manifest_query("manifest_method_number", "manifest method is a number", r"'method' is 3, not a fusion name\."),
    # a cache folder that is a plain file: silently accepted before (every write into it failed later)
    Case("data-cache-dir-is-a-file", "--cache-dir naming a plain file", "python -m core.data",
         ("--data", "synthetic", "--cache-dir", "{cache_file}"), CACHE_FILE),
    Case("train-cache-dir-is-a-file", "--set cache_dir= a plain file", "python -m core.train",
         ("--smoke-test", "--set", "cache_dir={cache_file}", "--out", "{tmp}/out"), CACHE_FILE),
    Case("search-cache-dir-is-a-file", "run_search.py --set cache_dir= a plain file", "run_search.py",
         ("--set", "cache_dir={cache_file}", *SMOKE), CACHE_FILE),
)

# services and names only reachable or loadable elsewhere: refused before Ray starts, in one line of ours
SERVICE_CASES: tuple[Case, ...] = (
    Case("optuna-storage-missing-folder", "--optuna-storage sqlite URL in a folder that does not exist (an "
         "SQLAlchemy traceback after 10 s before)", "run_search.py",
         ("--optuna-storage", "sqlite:////no/such/dir/study.db", *SMOKE),
         r"--optuna-storage: sqlite:////no/such/dir/study\.db: the folder /no/such/dir does not exist.*Fix: create"),
    Case("search-unknown-text-model-offline", "--set text_model= a hub name that is not cached, offline (the last "
         "line was the Hugging Face library's own before)", "run_search.py",
         ("--set", "text_model=some-org/unknown-model", *SMOKE),
         r"config key 'text_model' = 'some-org/unknown-model' cannot be loaded: .*offline.*Fix: cache it once.*"
         r"packaged default text_model='.*'\.$"),
    Case("optuna-storage-refused", "--optuna-storage of a PostgreSQL server that refuses (credentials in the URL)",
         "run_search.py", ("--optuna-storage", "postgresql+psycopg2://nobody:secret@127.0.0.1:{closed_port}/none",
                           *SMOKE),
         r"--optuna-storage postgresql\+psycopg2://\*\*\*@127\.0\.0\.1:\d+/none: cannot open the database "
         r"\(OperationalError: .*Connection refused.*Fix: check the URL, that the server runs"),
    Case("optuna-storage-driver-missing", "--optuna-storage naming a database driver that is not installed (plain "
         "postgresql:// means psycopg 3 to SQLAlchemy 2.1; our fix named psycopg2 before)", "run_search.py",
         ("--optuna-storage", "postgresql+pg8000://u@127.0.0.1:{closed_port}/db", *SMOKE),
         r"--optuna-storage postgresql\+pg8000://\*\*\*@127\.0\.0\.1:\d+/db: its database driver, the module "
         r"'pg8000', is not installed\. Fix: pip install it, or name an installed driver"),
)

# cloud storage that cannot be reached, checked with a bounded wait before Ray starts (tests/search/
# test_storage_reach.py adds s3:// against a closed and a stalled local endpoint, and gs:// without credentials)
STORAGE_CASES: tuple[Case, ...] = (
    Case("storage-hdfs-without-java", "--storage hdfs:// on a machine without a JVM (a traceback before)",
         "run_search.py", ("--smoke-test", "--no-wandb", "--storage", "hdfs://namenode:8020/experiments"),
         r"--storage hdfs://namenode:8020/experiments: cannot be reached \(.*libjvm.*\)\. Fix: check the network"),
    Case("storage-abfs-without-credentials", "--storage abfs:// without Azure credentials (a traceback before)",
         "run_search.py", ("--smoke-test", "--no-wandb", "--storage", "abfs://runs@account.dfs.core.windows.net/x"),
         r"--storage abfs://\*\*\*@account\.dfs\.core\.windows\.net/x: cannot be reached \(.*Credential.*Fix: check"),
)

CLUSTER_CASES: tuple[Case, ...] = (
    Case("address-ray-client-not-installed", "--address ray://host:10001 without ray[client] (a ValueError "
         "traceback before)", "run_search.py", ("--address", "ray://127.0.0.1:{closed_port}", *SMOKE),
         r"--address: ray://127\.0\.0\.1:\d+: a ray:// address connects through Ray Client, which needs the "
         r"package ray\[client\].*Fix: pip install"),
    Case("address-unknown-host", "--address of a host name that does not resolve", "run_search.py",
         ("--address", "no-such-head.invalid:6379", *SMOKE),
         r"--address no-such-head\.invalid:6379: cannot reach a Ray cluster there \(.*(not known|resolution|"
         r"name).*\)\. Start it"),
    Case("address-port-out-of-range", "--address with a port above 65535", "run_search.py",
         ("--address", "127.0.0.1:70000", *SMOKE),
         r"--address '127\.0\.0\.1:70000': expected host:port with a port in 1\.\.65535"),
)
