package rpc

import (
	"google.golang.org/grpc"

	httpgatewayv1 "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// Register registers the gateway's gRPC services on s.
func Register(s grpc.ServiceRegistrar) {
	httpgatewayv1.RegisterClientRequestServiceServer(s, &clientRequestService{})
	httpgatewayv1.RegisterAgentServiceServer(s, &agentService{})
}

// clientRequestService implements httpgatewayv1.ClientRequestServiceServer.
// RPCs that are not implemented yet answer UNIMPLEMENTED through the embedded
// generated type, naming the method.
type clientRequestService struct {
	httpgatewayv1.UnimplementedClientRequestServiceServer
}

// agentService implements httpgatewayv1.AgentServiceServer.
type agentService struct {
	httpgatewayv1.UnimplementedAgentServiceServer
}
