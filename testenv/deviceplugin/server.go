package main

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// Plugin is the device plugin's gRPC service: a fixed set of always-healthy devices. Its methods only
// translate between the API and the pure functions in devices.go.
type Plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	ids []string
}

// NewPlugin serves the given device ids.
func NewPlugin(ids []string) *Plugin {
	return &Plugin{ids: ids}
}

// Options says what the kubelet may call besides ListAndWatch and Allocate: GetPreferredAllocation (as
// NVIDIA's plugin offers) but no PreStartContainer round trip.
func Options() *pluginapi.DevicePluginOptions {
	return &pluginapi.DevicePluginOptions{GetPreferredAllocationAvailable: true}
}

// GetDevicePluginOptions is asked by the kubelet right after registration.
func (p *Plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return Options(), nil
}

// ListAndWatch sends the devices once and then holds the stream open, as the kubelet expects: a closed
// stream makes it treat the plugin as gone. The devices never change, so nothing else is ever sent.
func (p *Plugin) ListAndWatch(_ *pluginapi.Empty, stream pluginapi.DevicePlugin_ListAndWatchServer) error {
	if err := stream.Send(&pluginapi.ListAndWatchResponse{Devices: APIDevices(p.ids)}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

// GetPreferredAllocation answers each container's request with PreferredDevices.
func (p *Plugin) GetPreferredAllocation(
	_ context.Context, req *pluginapi.PreferredAllocationRequest,
) (*pluginapi.PreferredAllocationResponse, error) {
	resp := &pluginapi.PreferredAllocationResponse{}
	for _, c := range req.ContainerRequests {
		ids := PreferredDevices(p.ids, c.AvailableDeviceIDs, c.MustIncludeDeviceIDs, int(c.AllocationSize))
		resp.ContainerResponses = append(resp.ContainerResponses,
			&pluginapi.ContainerPreferredAllocationResponse{DeviceIDs: ids})
	}
	return resp, nil
}

// Allocate answers each container's request with ContainerAllocation; one bad request fails the call.
func (p *Plugin) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, c := range req.ContainerRequests {
		answer, err := ContainerAllocation(p.ids, c.DevicesIds)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		resp.ContainerResponses = append(resp.ContainerResponses, answer)
	}
	return resp, nil
}

// PreStartContainer is never called (Options says PreStartRequired is false); it answers anyway.
func (p *Plugin) PreStartContainer(
	context.Context, *pluginapi.PreStartContainerRequest,
) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}
