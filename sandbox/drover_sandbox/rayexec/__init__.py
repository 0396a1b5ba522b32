"""Local stack: a small stand-in for KubeRay that runs RayJobs and RayServices on a local Ray.

`python -m drover_sandbox.rayexec` watches `ray.io/v1` RayJob and RayService objects in the local
control plane, runs them on one local Ray cluster (Jobs API, Serve REST API) and writes their
status the way KubeRay v1.7.0 does. It exists for `drover local up`, the demo and the tests only:
it is never used on a real cluster, where KubeRay itself runs these objects.
"""
