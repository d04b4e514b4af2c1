package main

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// registration is what the fake kubelet learnt from one Register call, by doing what the kubelet does:
// dial the endpoint, ask for the options, open ListAndWatch and read the first device list.
type registration struct {
	req     *pluginapi.RegisterRequest
	options *pluginapi.DevicePluginOptions
	devices []*pluginapi.Device
	client  pluginapi.DevicePluginClient
	stream  pluginapi.DevicePlugin_ListAndWatchClient
}

// fakeKubelet is the plugin's peer in these tests: the kubelet's Registration service on kubelet.sock.
type fakeKubelet struct {
	pluginapi.UnimplementedRegistrationServer
	t      *testing.T
	dir    string
	server *grpc.Server
	got    chan registration
}

func startFakeKubelet(t *testing.T, dir string) *fakeKubelet {
	t.Helper()
	k := &fakeKubelet{t: t, dir: dir, got: make(chan registration, 4)}
	listener, err := net.Listen("unix", filepath.Join(dir, KubeletSocketName))
	if err != nil {
		t.Fatal(err)
	}
	k.server = grpc.NewServer()
	pluginapi.RegisterRegistrationServer(k.server, k)
	go func() { _ = k.server.Serve(listener) }()
	t.Cleanup(k.server.Stop)
	return k
}

// restart does what a kubelet restart does to the directory: its server goes, every socket in the
// directory is removed (the kubelet's CleanupPluginDirectory), and a new kubelet.sock appears.
func (k *fakeKubelet) restart() *fakeKubelet {
	k.t.Helper()
	k.server.Stop()
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		k.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type()&os.ModeSocket != 0 {
			if err := os.Remove(filepath.Join(k.dir, e.Name())); err != nil {
				k.t.Fatal(err)
			}
		}
	}
	return startFakeKubelet(k.t, k.dir)
}

func (k *fakeKubelet) Register(ctx context.Context, req *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	conn, err := grpc.NewClient("unix://"+filepath.Join(k.dir, req.Endpoint),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	k.t.Cleanup(func() { _ = conn.Close() })
	client := pluginapi.NewDevicePluginClient(conn)
	options, err := client.GetDevicePluginOptions(ctx, &pluginapi.Empty{})
	if err != nil {
		return nil, err
	}
	stream, err := client.ListAndWatch(context.Background(), &pluginapi.Empty{})
	if err != nil {
		return nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	k.got <- registration{req: req, options: options, devices: first.Devices, client: client, stream: stream}
	return &pluginapi.Empty{}, nil
}

func (k *fakeKubelet) next() registration {
	k.t.Helper()
	select {
	case r := <-k.got:
		return r
	case <-time.After(10 * time.Second):
		k.t.Fatal("the plugin did not register within 10s")
		return registration{}
	}
}

// socketDir is a short temporary folder: a unix socket path has at most 107 bytes.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// startPlugin runs the plugin in the background; the returned function stops it and returns Run's error.
func startPlugin(t *testing.T, dir string, count int) func() error {
	return startPluginPolling(t, dir, count, 20*time.Millisecond)
}

func startPluginPolling(t *testing.T, dir string, count int, poll time.Duration) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := Config{
		Dir: dir, SocketName: "test-gpu.sock", Resource: "nvidia.com/gpu", Count: count,
		Poll: poll, Log: log.New(io.Discard, "", 0),
	}
	go func() { done <- Run(ctx, cfg) }()
	var once sync.Once
	var result error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10s of its context ending")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func deviceIDsOf(devices []*pluginapi.Device) []string {
	ids := make([]string, len(devices))
	for i, d := range devices {
		ids[i] = d.ID
		if d.Health != pluginapi.Healthy {
			panic("unhealthy device " + d.ID)
		}
	}
	return ids
}

func TestRegistersWithTheKubeletAndServesItsDevices(t *testing.T) {
	dir := socketDir(t)
	kubelet := startFakeKubelet(t, dir)
	startPlugin(t, dir, 2)

	r := kubelet.next()
	if r.req.Version != pluginapi.Version || r.req.ResourceName != "nvidia.com/gpu" || r.req.Endpoint != "test-gpu.sock" {
		t.Errorf("register request %v", r.req)
	}
	if !r.options.GetPreferredAllocationAvailable || r.options.PreStartRequired {
		t.Errorf("options %v", r.options)
	}
	if ids := deviceIDsOf(r.devices); !slices.Equal(ids, DeviceIDs(2)) {
		t.Errorf("ListAndWatch sent %v, want %v", ids, DeviceIDs(2))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ids := DeviceIDs(2)
	answer, err := r.client.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{ids[1]}}, {DevicesIds: []string{ids[0], ids[1]}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(answer.ContainerResponses) != 2 ||
		answer.ContainerResponses[0].Envs[VisibleDevicesEnv] != ids[1] ||
		answer.ContainerResponses[1].Envs[VisibleDevicesEnv] != ids[0]+","+ids[1] {
		t.Errorf("Allocate answered %v", answer)
	}
	_, err = r.client.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{"GPU-not-ours"}},
	}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("an unknown device gave %v, want InvalidArgument", err)
	}

	preferred, err := r.client.GetPreferredAllocation(ctx, &pluginapi.PreferredAllocationRequest{
		ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{
			{AvailableDeviceIDs: []string{ids[1], ids[0]}, AllocationSize: 1},
		},
	})
	if err != nil || len(preferred.ContainerResponses) != 1 || !slices.Equal(preferred.ContainerResponses[0].DeviceIDs, ids[:1]) {
		t.Errorf("GetPreferredAllocation answered %v, %v", preferred, err)
	}
	if _, err := r.client.PreStartContainer(ctx, &pluginapi.PreStartContainerRequest{}); err != nil {
		t.Errorf("PreStartContainer: %v", err)
	}
}

func TestListAndWatchKeepsTheStreamOpen(t *testing.T) {
	dir := socketDir(t)
	kubelet := startFakeKubelet(t, dir)
	stop := startPlugin(t, dir, 1)
	r := kubelet.next()

	received := make(chan error, 1)
	go func() {
		_, err := r.stream.Recv()
		received <- err
	}()
	select {
	case err := <-received:
		t.Fatalf("the stream ended or sent again after the device list: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-received:
		if err == nil {
			t.Error("a stopped plugin sent another device list")
		}
	case <-time.After(5 * time.Second):
		t.Error("the stream stayed open after the plugin stopped")
	}
}

func TestWaitsForTheKubeletThenRegisters(t *testing.T) {
	dir := socketDir(t)
	startPlugin(t, dir, 1)
	own := filepath.Join(dir, "test-gpu.sock")
	deadline := time.Now().Add(5 * time.Second)
	for _, ok := socketID(own); !ok; _, ok = socketID(own) {
		if time.Now().After(deadline) {
			t.Fatal("the plugin did not create its socket without a kubelet")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // several polls with no kubelet
	kubelet := startFakeKubelet(t, dir)
	if ids := deviceIDsOf(kubelet.next().devices); !slices.Equal(ids, DeviceIDs(1)) {
		t.Errorf("ListAndWatch sent %v", ids)
	}
}

func TestRegistersAgainWhenTheKubeletRestarts(t *testing.T) {
	dir := socketDir(t)
	kubelet := startFakeKubelet(t, dir)
	startPlugin(t, dir, 3)
	first := kubelet.next()

	kubelet = kubelet.restart()
	second := kubelet.next()
	if second.req.ResourceName != "nvidia.com/gpu" || !slices.Equal(deviceIDsOf(second.devices), DeviceIDs(3)) {
		t.Errorf("second registration %v with %v", second.req, second.devices)
	}
	if _, err := first.stream.Recv(); err == nil {
		t.Error("the stream to the old kubelet is still served")
	}
	select {
	case extra := <-kubelet.got:
		t.Errorf("registered twice with one kubelet: %v", extra.req)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestStopRemovesOnlyItsOwnSocket(t *testing.T) {
	dir := socketDir(t)
	kubelet := startFakeKubelet(t, dir)
	stop := startPlugin(t, dir, 1)
	kubelet.next()
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "test-gpu.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the plugin's socket is still there after stopping (%v)", err)
	}
	if _, ok := socketID(filepath.Join(dir, KubeletSocketName)); !ok {
		t.Error("stopping the plugin removed kubelet.sock")
	}
}

func TestStopLeavesASocketThatIsNoLongerItsOwn(t *testing.T) {
	dir := socketDir(t)
	kubelet := startFakeKubelet(t, dir)
	stop := startPluginPolling(t, dir, 1, time.Hour) // serves and registers once, then never looks again
	kubelet.next()
	own := filepath.Join(dir, "test-gpu.sock")
	// File times are kernel-tick coarse and a freed inode number is handed out again at once: a socket
	// made within the same tick as ours would be indistinguishable from it. Real replacements come later.
	time.Sleep(50 * time.Millisecond)
	if err := os.Remove(own); err != nil { // as a restarting kubelet does; then another process takes the name
		t.Fatal(err)
	}
	other, err := net.Listen("unix", own)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close() }()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, ok := socketID(own); !ok {
		t.Error("stopping removed a socket the plugin did not create")
	}
}
