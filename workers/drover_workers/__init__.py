"""Drover's workers: the code KubeRay runs (fetch, finetune, index RayJobs and the serve app).

No Kubernetes client and no operator code here; configuration comes in as JSON/YAML and results
go out as `::drover::` lines on stdout (see README.md).
"""
