// Package deploy holds Hangar's deployment artefacts (container images,
// Kubernetes manifests, compose, systemd units, Prometheus rules, Grafana
// dashboard, dev certificates) and no code: its tests validate every
// artefact statically in `make test`. docs/deploy.md describes each one.
package deploy
