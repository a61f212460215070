// Command terraform-provider-oidcbridge is the Terraform (and OpenTofu)
// provider of oidc-bridge: issuers and mappings managed as code through the
// admin API. Build it with the version in the ldflags:
//
//	go build -ldflags "-X main.version=1.2.3" -o terraform-provider-oidcbridge ./terraform
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/oidc-bridge/oidc-bridge/terraform/internal/provider"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: provider.Address,
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
