// A static program that sleeps until it is told to stop: the test images' only binary, both the
// pod sandbox's pause image and every workload (a container that stays Running until deleted).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
