// Command etcd runs etcd's own entry point (etcdmain.Main); nothing else is added.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
