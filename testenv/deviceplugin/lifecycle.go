package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// KubeletSocketName is the kubelet's registration socket inside the device-plugin directory.
const KubeletSocketName = "kubelet.sock"

// Config is what the command line sets.
type Config struct {
	Dir        string        // the kubelet's device-plugin directory (absolute)
	SocketName string        // this plugin's socket, inside Dir
	Resource   string        // the extended resource advertised, e.g. nvidia.com/gpu
	Count      int           // how many devices
	Poll       time.Duration // how often the sockets are looked at
	Log        *log.Logger
}

// fileID identifies one incarnation of a socket file. A restarting kubelet removes every socket in the
// directory (its own stale one and the plugins') and creates kubelet.sock anew: the identity changes
// then even when the file system hands out the same inode number again, thanks to the creation time.
type fileID struct {
	dev, ino uint64
	ctimeNs  int64
}

// socketID is the identity of the socket at path, and false when there is none.
func socketID(path string) (fileID, bool) {
	info, err := os.Lstat(path)
	if err != nil || info.Mode()&fs.ModeSocket == 0 {
		return fileID{}, false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino, ctimeNs: st.Ctim.Nano()}, true
}

// observed is what one look at the directory found.
type observed struct {
	own, kubelet     fileID
	ownOK, kubeletOK bool
}

// state is what the plugin has done so far: the socket it serves on, the kubelet socket it registered with.
type state struct {
	served, registeredWith fileID
}

// step is what to do next.
type step struct {
	reserve  bool // (re)create our socket and serve on it
	register bool // call Register on the kubelet
}

// nextStep decides from what is on disk. Our socket gone or replaced (the kubelet deletes it when it
// starts) means serving again; a kubelet socket other than the one registered with means a new kubelet,
// which knows nothing of this plugin. A re-served socket needs a new registration too. No kubelet
// socket: wait; a later one has a new identity and triggers registration.
func nextStep(s state, o observed) step {
	reserve := !o.ownOK || o.own != s.served
	return step{reserve: reserve, register: o.kubeletOK && (reserve || o.kubelet != s.registeredWith)}
}

// Run serves the plugin until ctx ends, keeping it registered with whichever kubelet owns the
// directory, and removes its socket on the way out.
func Run(ctx context.Context, cfg Config) error {
	own := filepath.Join(cfg.Dir, cfg.SocketName)
	kubelet := filepath.Join(cfg.Dir, KubeletSocketName)
	plugin := NewPlugin(DeviceIDs(cfg.Count))
	var server *grpc.Server
	var st state
	defer func() { stopServing(server, own, st.served) }()

	ticker := time.NewTicker(cfg.Poll)
	defer ticker.Stop()
	lastErr := ""
	for {
		var o observed
		o.own, o.ownOK = socketID(own)
		o.kubelet, o.kubeletOK = socketID(kubelet)
		next := nextStep(st, o)
		if next.reserve {
			stopServing(server, own, st.served)
			var err error
			if server, st.served, err = serve(plugin, own); err != nil {
				return err
			}
			cfg.Log.Printf("serving %d %s devices on %s", cfg.Count, cfg.Resource, own)
		}
		if next.register {
			if err := register(ctx, kubelet, cfg); err != nil {
				if err.Error() != lastErr { // a kubelet still starting fails every poll: say it once
					cfg.Log.Printf("registering with %s failed (retrying): %v", kubelet, err)
					lastErr = err.Error()
				}
			} else {
				st.registeredWith = o.kubelet
				lastErr = ""
				cfg.Log.Printf("registered %s with the kubelet at %s", cfg.Resource, kubelet)
			}
		}
		select {
		case <-ctx.Done():
			cfg.Log.Printf("stopping: removing %s", own)
			return nil
		case <-ticker.C:
		}
	}
}

// serve listens on path (replacing a stale socket a killed run left behind) and serves the plugin there.
func serve(plugin *Plugin, path string) (*grpc.Server, fileID, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fileID{}, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fileID{}, err
	}
	listener, err := net.Listen("unix", path)
	if err != nil {
		return nil, fileID{}, fmt.Errorf("listening on %s: %w", path, err)
	}
	// Go would unlink path when the server closes the listener, whatever file is there by then;
	// stopServing removes it only while it is still ours.
	listener.(*net.UnixListener).SetUnlinkOnClose(false)
	id, ok := socketID(path)
	if !ok {
		_ = listener.Close()
		return nil, fileID{}, fmt.Errorf("%s vanished right after listening on it", path)
	}
	server := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(server, plugin)
	go func() { _ = server.Serve(listener) }()
	return server, id, nil
}

// stopServing ends every stream and removes the socket, unless it is no longer the one served (the
// kubelet deleted it, or another process took the name): that file is not ours to remove.
func stopServing(server *grpc.Server, path string, served fileID) {
	if server == nil {
		return
	}
	server.Stop()
	if id, ok := socketID(path); ok && id == served {
		_ = os.Remove(path)
	}
}

// register tells the kubelet at kubeletSocket about this plugin; the kubelet dials back the endpoint
// (a name relative to its device-plugin directory) before answering.
func register(ctx context.Context, kubeletSocket string, cfg Config) error {
	conn, err := grpc.NewClient("unix://"+kubeletSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     cfg.SocketName,
		ResourceName: cfg.Resource,
		Options:      Options(),
	})
	return err
}
