"""params.yaml, one module per block, so a stage depends on the validation of the blocks it reads only.

`core` reads the file and checks fields against their annotations; `data`, `prepare`, `embed`, `train`,
`evaluate`, `baselines` and `variants` each define one block (an architecture's own settings, and the
`model` block the notebook architecture shares, live in its module under `movierec.architectures`).
`project` loads every block at once, for people-facing commands and tests; no stage imports it.
"""
