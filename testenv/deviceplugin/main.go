// Command faceblur-device-plugin advertises GPUs that are not there to a kubelet, through the kubelet's
// real device-plugin API, so that GPU pods of the test node go through the scheduler's and the
// kubelet's allocation path. Its Allocate answers as NVIDIA's plugin does: the granted device ids in
// NVIDIA_VISIBLE_DEVICES.
//
// The kubelet (1.34) always listens on /var/lib/kubelet/device-plugins/kubelet.sock whatever its
// --root-dir, so that is the default directory.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "faceblur-device-plugin:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, cfg); err != nil {
		cfg.Log.Printf("error: %v", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (Config, error) {
	flags := flag.NewFlagSet("faceblur-device-plugin", flag.ContinueOnError)
	dir := flags.String("device-plugin-dir", pluginapi.DevicePluginPath,
		"the kubelet's device-plugin directory (holds kubelet.sock)")
	gpus := flags.Int("gpus", 1, "how many devices to advertise")
	resource := flags.String("resource", "nvidia.com/gpu", "the extended resource to advertise")
	socket := flags.String("socket", "faceblur-gpu.sock", "this plugin's socket name inside the directory")
	poll := flags.Duration("poll", 500*time.Millisecond, "how often to look for a restarted kubelet")
	if err := flags.Parse(args); err != nil {
		return Config{}, err
	}
	if flags.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(flags.Args(), " "))
	}
	if *gpus < 0 {
		return Config{}, fmt.Errorf("-gpus must be 0 or more, not %d", *gpus)
	}
	if *poll <= 0 {
		return Config{}, fmt.Errorf("-poll must be positive, not %s", *poll)
	}
	if strings.Contains(*socket, "/") || *socket == KubeletSocketName {
		return Config{}, fmt.Errorf("-socket must be a plain file name other than %s, not %q", KubeletSocketName, *socket)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return Config{}, err
	}
	return Config{
		Dir: abs, SocketName: *socket, Resource: *resource, Count: *gpus, Poll: *poll,
		Log: log.New(os.Stderr, "faceblur-device-plugin: ", log.LstdFlags|log.Lmicroseconds),
	}, nil
}
