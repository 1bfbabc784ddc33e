// etcd for the end-to-end tests, at the version k8s.io/kubernetes v1.37.2 pins: etcd's own main
// is this one call.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
