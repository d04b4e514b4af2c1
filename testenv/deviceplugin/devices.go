package main

import (
	"fmt"
	"slices"
	"strings"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// VisibleDevicesEnv is the variable NVIDIA's device plugin sets (its "envvar" device-list strategy) and
// the NVIDIA container runtime reads to decide which GPUs a container sees; pods here see it the same way.
const VisibleDevicesEnv = "NVIDIA_VISIBLE_DEVICES"

// DeviceIDs names count devices in the shape of NVIDIA GPU UUIDs ("GPU-" and a UUID), fixed per index so
// that tests and logs can predict them, and recognisable as ours by the leading fb7e57e0 ("fb testenv").
func DeviceIDs(count int) []string {
	ids := make([]string, count)
	for i := range ids {
		ids[i] = fmt.Sprintf("GPU-fb7e57e0-0000-4000-8000-%012x", i)
	}
	return ids
}

// APIDevices is what ListAndWatch advertises: every device healthy, since none of them can fail.
func APIDevices(ids []string) []*pluginapi.Device {
	devices := make([]*pluginapi.Device, len(ids))
	for i, id := range ids {
		devices[i] = &pluginapi.Device{ID: id, Health: pluginapi.Healthy}
	}
	return devices
}

// ContainerAllocation answers one container's share of an Allocate call as NVIDIA's plugin does with its
// default envvar strategy: the granted ids, comma-separated, in NVIDIA_VISIBLE_DEVICES. An id this plugin
// never advertised is an error, which the kubelet turns into a failed pod admission.
func ContainerAllocation(known, requested []string) (*pluginapi.ContainerAllocateResponse, error) {
	if len(requested) == 0 {
		return nil, fmt.Errorf("allocation request without device ids")
	}
	for _, id := range requested {
		if !slices.Contains(known, id) {
			return nil, fmt.Errorf("unknown device %q (this plugin has %s)", id, strings.Join(known, ", "))
		}
	}
	return &pluginapi.ContainerAllocateResponse{
		Envs: map[string]string{VisibleDevicesEnv: strings.Join(requested, ",")},
	}, nil
}

// PreferredDevices picks size devices for one container: the ones the kubelet must include first, then
// the available ones in the plugin's own order (all devices are alike, so the lowest indexes win and
// allocations are deterministic).
func PreferredDevices(order, available, mustInclude []string, size int) []string {
	chosen := make([]string, 0, size)
	add := func(id string) {
		if len(chosen) < size && !slices.Contains(chosen, id) {
			chosen = append(chosen, id)
		}
	}
	for _, id := range mustInclude {
		add(id)
	}
	for _, id := range order {
		if slices.Contains(available, id) {
			add(id)
		}
	}
	return chosen
}
