"""Training DCM-net: the loss, the optimiser, the loop, checkpoints and experiment folders.

* :mod:`~dcmnet.training.loss` — masked losses and metric sums (the batched forward pass is
  :func:`dcmnet.model.predict_batch`);
* :mod:`~dcmnet.training.optim` — optax optimiser and learning-rate schedules;
* :mod:`~dcmnet.training.loop` — ``train_model`` (jit-compiled steps, EMA, NaN guard);
* :mod:`~dcmnet.training.checkpoint` — orbax checkpoints (the only module that imports orbax);
* :mod:`~dcmnet.training.experiment` — the experiment folder (config, split, history);
* :mod:`~dcmnet.training.monitor` — history CSV, TensorBoard, MLflow;
* :mod:`~dcmnet.training.parallel` — data-parallel steps over several devices;
* :mod:`~dcmnet.training.evaluate` — per-molecule test-set errors and fitted baselines;
* :mod:`~dcmnet.training.runner` — ``run_training``: data, split, experiment, train, evaluate.

Nothing is imported here, so ``import dcmnet.training.experiment`` stays cheap.
"""
