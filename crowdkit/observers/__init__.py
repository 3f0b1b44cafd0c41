"""Machine observers: the paper's 2-AFC trials answered from perceptual similarity.

The Machine Interpretability Score (Zimmermann, Klindt & Brendel, NeurIPS 2024) replaces
the human of the 2-AFC task with a classifier on image similarities (DreamSim). crowdkit's
observer answers the study's own designed trials (main and catch, every condition) through
the trial type's interface, so human and machine answers are rows of one format, and can
screen every unit of the manifest on tasks drawn the paper's way.

- `similarity`: the similarity functions (dreamsim, lpips, a model's features) and the
  embedding cache by pixel hash;
- `mis`: the classifier, batched across tasks, and the MIS per unit;
- `tasks`: the designed trials as the observer sees them, and drawn screening tasks;
- `run`: `crowdkit mis`, which writes data/machine_trials.parquet and data/mis.csv.

Importing this package loads neither torch nor pandas; running the observer does.
"""

MACHINE_TRIALS = "machine_trials.parquet"  # in a study's data/, beside its targets' folders
