//go:build tools

// Package tools names the commands this module builds; it is never compiled.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
