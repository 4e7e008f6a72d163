package main

import (
	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/proxyenv"
)

// globalProxyEnv collects the gateway process's proxy variables for the
// global agent (--proxy-from-env) and validates them as the agent will, so
// that a bad proxy URL stops the start with a clear message.
func globalProxyEnv(lookup func(string) (string, bool)) (map[string]string, error) {
	env := map[string]string{}
	for _, k := range []string{proxyenv.KeyHTTPProxy, proxyenv.KeyHTTPProxyLower, proxyenv.KeyHTTPSProxy,
		proxyenv.KeyHTTPSProxyLower, proxyenv.KeyNoProxy, proxyenv.KeyNoProxyLower} {
		if v, ok := lookup(k); ok {
			env[k] = v
		}
	}
	o := agentpool.GlobalOptions()
	o.ProxyEnv = env
	return env, o.Validate()
}
