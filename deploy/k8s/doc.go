// Package k8s holds the Kubernetes manifests of HoneyBee Core (a kustomize
// base: kubectl apply -k deploy/k8s). Its tests decode every manifest
// strictly into the Kubernetes API types and build the kustomization.
package k8s
