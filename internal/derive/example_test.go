package derive_test

import (
	"fmt"
	"log"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/entrepot/entrepot/internal/derive"
)

// The configuration's derive: list is decoded and validated, then each
// spec is applied to its base, here a random image standing in for one
// fetched from upstream.
func Example() {
	specs, err := derive.Decode(strings.NewReader(`
- name: vault
  from: docker.io/hashicorp/vault:1.14
  env: {VAULT_LOG_LEVEL: info}
  user: "100:1000"
  files:
    - {path: /etc/vault/config.hcl, content: "ui = true\n", uid: 100, gid: 1000}
`))
	if err != nil {
		log.Fatal(err)
	}
	base, err := random.Image(64, 1)
	if err != nil {
		log.Fatal(err)
	}
	img, err := derive.Image(base, specs[0], v1.Hash{})
	if err != nil {
		log.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	m, _ := img.Manifest()
	fmt.Println(specs[0].DerivedTag(), cf.Config.Env, cf.Config.User, len(m.Layers))
	fmt.Println(m.Annotations["org.opencontainers.image.base.name"])
	// Output:
	// 1.14 [VAULT_LOG_LEVEL=info] 100:1000 2
	// docker.io/hashicorp/vault:1.14
}
