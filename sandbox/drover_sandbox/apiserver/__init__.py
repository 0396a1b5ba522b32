"""Local control plane: a Kubernetes API server on loopback for tests and `make demo`.

Start it with `drover local apiserver --port N --data-dir D [--snapshot]`; it writes
`D/kubeconfig` for kubectl, the `kubernetes` client and kopf. From Python (tests, the local
stack): `launcher.start(data_dir, *extra_args) -> (process, url)` and `launcher.stop(process)`.

Layers: `server` (HTTP, routing) -> `crud`/`listwatch`/`scale` (verbs) -> `strategy` (what a
write does) -> `store` + `watch` (objects, resourceVersion, event rings) and `gc` (finalizers,
owner references, namespaces); `registry` and `discovery` describe what is served. The pure
libraries `errors`, `schema`, `cel`, `patch`/`apply`, `openapi` and `tables` give kube's exact
answers. `POST /_drover/faults` (see `faults.Faults`) injects errors, latency and watch cuts.

Not implemented: authentication/authorization (every request is allowed), protobuf bodies other
than Namespace/ConfigMap/Secret/ServiceAccount (415), CRD conversion webhooks (versions share one
storage; only `apiVersion` changes), admission webhooks, validation of built-in kinds beyond
object names, and controllers (Deployments/Jobs/Pods never run; tests play that part by writing
status).
"""
