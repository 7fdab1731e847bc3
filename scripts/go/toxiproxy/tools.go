//go:build tools

// Package tools pins toxiproxy's server for `go build` (see scripts/setup/toxiproxy.sh).
package tools

import _ "github.com/Shopify/toxiproxy/v2/cmd/server"
