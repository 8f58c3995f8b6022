package server

import "github.com/herald-gw/herald/internal/api"

// healthSource is what /healthz and /readyz read from the node.
func (s *Server) healthSource() api.Health {
	return api.Health{
		Ready:    s.ready.Load,
		Serving:  s.readyToServe,
		DataLoss: s.engine.DataLoss,
		Engine:   s.engine.Mode(),
		Gauges:   &s.gauges,
		Head:     s.hub.Head,
		StateLag: s.engine.StateLag,
	}
}
