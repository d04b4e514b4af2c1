package main

import (
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

var nvidiaUUID = regexp.MustCompile(`^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestDeviceIDsAreDistinctNvidiaShapedUUIDs(t *testing.T) {
	ids := DeviceIDs(20)
	if len(ids) != 20 {
		t.Fatalf("got %d ids, want 20", len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if !nvidiaUUID.MatchString(id) {
			t.Errorf("%q is not shaped like an NVIDIA GPU UUID", id)
		}
		if seen[id] {
			t.Errorf("%q repeats", id)
		}
		seen[id] = true
	}
	if ids[0] != "GPU-fb7e57e0-0000-4000-8000-000000000000" || ids[11] != "GPU-fb7e57e0-0000-4000-8000-00000000000b" {
		t.Errorf("ids are not the documented fixed ones: %v", ids)
	}
	if !slices.Equal(DeviceIDs(3), ids[:3]) {
		t.Error("the first ids depend on the count")
	}
	if len(DeviceIDs(0)) != 0 {
		t.Error("zero devices gave ids")
	}
}

func TestAPIDevicesAreAllHealthy(t *testing.T) {
	devices := APIDevices(DeviceIDs(3))
	for i, d := range devices {
		if d.ID != DeviceIDs(3)[i] || d.Health != pluginapi.Healthy {
			t.Errorf("device %d: %v", i, d)
		}
	}
}

func TestContainerAllocation(t *testing.T) {
	known := DeviceIDs(3)
	cases := []struct {
		name      string
		requested []string
		env       string
		wantErr   bool
	}{
		{"one device", known[1:2], known[1], false},
		{"several keep the kubelet's order", []string{known[2], known[0]}, known[2] + "," + known[0], false},
		{"unknown device", []string{known[0], "GPU-00000000-0000-0000-0000-000000000000"}, "", true},
		{"no device", nil, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ContainerAllocation(known, c.requested)
			if c.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{VisibleDevicesEnv: c.env}
			if len(got.Envs) != 1 || got.Envs[VisibleDevicesEnv] != c.env {
				t.Errorf("envs %v, want %v", got.Envs, want)
			}
			if len(got.Mounts) != 0 || len(got.Devices) != 0 || len(got.Annotations) != 0 {
				t.Errorf("no device exists, yet the answer has mounts, devices or annotations: %v", got)
			}
		})
	}
}

func TestPreferredDevices(t *testing.T) {
	ids := DeviceIDs(4)
	cases := []struct {
		name                   string
		available, mustInclude []string
		size                   int
		want                   []string
	}{
		{"lowest indexes first", []string{ids[3], ids[1], ids[2]}, nil, 2, []string{ids[1], ids[2]}},
		{"must-include first", []string{ids[0], ids[1], ids[3]}, []string{ids[3]}, 2, []string{ids[3], ids[0]}},
		{"must-include is not repeated", ids, []string{ids[0]}, 2, []string{ids[0], ids[1]}},
		{"never more than available", ids[:1], nil, 3, ids[:1]},
		{"size zero", ids, nil, 0, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := PreferredDevices(ids, c.available, c.mustInclude, c.size); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestNextStep(t *testing.T) {
	a, b, k1, k2 := fileID{1, 10, 5}, fileID{1, 10, 6}, fileID{1, 20, 5}, fileID{1, 20, 7}
	cases := []struct {
		name string
		s    state
		o    observed
		want step
	}{
		{"start, no kubelet", state{}, observed{}, step{reserve: true}},
		{"start, kubelet up", state{}, observed{kubelet: k1, kubeletOK: true}, step{true, true}},
		{"serving, waiting for a kubelet", state{served: a}, observed{own: a, ownOK: true}, step{}},
		{"kubelet appeared", state{served: a}, observed{own: a, ownOK: true, kubelet: k1, kubeletOK: true}, step{register: true}},
		{"registered, all quiet", state{a, k1}, observed{own: a, ownOK: true, kubelet: k1, kubeletOK: true}, step{}},
		{"kubelet restarted, removed our socket", state{a, k1}, observed{kubelet: k2, kubeletOK: true}, step{true, true}},
		{"kubelet socket recreated, ours kept", state{a, k1}, observed{own: a, ownOK: true, kubelet: k2, kubeletOK: true}, step{register: true}},
		{"our socket replaced by another", state{a, k1}, observed{own: b, ownOK: true, kubelet: k1, kubeletOK: true}, step{true, true}},
		{"kubelet gone", state{a, k1}, observed{own: a, ownOK: true}, step{}},
		{"kubelet gone with our socket", state{a, k1}, observed{}, step{reserve: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := nextStep(c.s, c.o); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-device-plugin-dir", "rel/dir", "-gpus", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(cfg.Dir) || cfg.Count != 3 || cfg.Resource != "nvidia.com/gpu" || cfg.SocketName != "faceblur-gpu.sock" {
		t.Errorf("unexpected config %+v", cfg)
	}
	defaults, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if defaults.Dir+"/" != pluginapi.DevicePluginPath || defaults.Count != 1 {
		t.Errorf("defaults %+v", defaults)
	}
	for _, bad := range [][]string{{"-gpus", "-1"}, {"-socket", "kubelet.sock"}, {"-socket", "a/b"}, {"extra"}, {"-poll", "0s"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
