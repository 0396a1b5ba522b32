"""`kubectl drover`: the kubectl plugin for Drover's resources (console script `kubectl-drover`)."""
