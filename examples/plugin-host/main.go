// Command plugin-host is a small multi-tenant HTTP service on 127.0.0.1:
// each tenant gets its own sandboxed graft plugin instance (native/host),
// loads the base model into it, trains its own adapter there and uses it,
// isolated from every other tenant.
//
//	go run ./examples/plugin-host [-addr 127.0.0.1:8080] [-model models/stories260K/stories260K.gguf] [-max-body-mb 32]
//
// Endpoints (JSON in and out; {id} is a tenant name of letters, digits, - and _):
//
//	POST   /tenants/{id}/train     {"data": "<jsonl>", "method": "lora", "options": {...}, "steps": 50, "lr": 0.01}
//	POST   /tenants/{id}/generate  {"prompt": "Once upon a time", "max_tokens": 40}
//	POST   /tenants/{id}/eval      {"texts": ["..."]}
//	GET    /tenants/{id}/adapter   the tenant's adapter as a msgpack bundle
//	DELETE /tenants/{id}           ends the tenant's instance
//	GET    /healthz                {"tenants": N}
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/graft-ml/graft/native/host"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (keep it on loopback)")
	modelPath := flag.String("model", "models/stories260K/stories260K.gguf", "base model (GGUF) every tenant starts from")
	memoryMB := flag.Int("memory-mb", 512, "memory cap of each tenant's instance, MiB")
	timeout := flag.Duration("timeout", 2*time.Minute, "deadline of each request")
	maxTenants := flag.Int("max-tenants", 50, "tenants served at once")
	maxBodyMB := flag.Int("max-body-mb", 32, "largest request body (training data included), MiB; larger ones get 413")
	cacheDir := flag.String("cache-dir", "", "directory for the compiled plugin (faster restarts)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	h, err := host.New(ctx, host.Options{MemoryLimitMB: *memoryMB, Timeout: *timeout, CacheDir: *cacheDir, Cooperative: true})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close(context.Background())
	log.Printf("plugin ready in %v (compile %v)", time.Since(start).Round(time.Millisecond), h.CompileTime().Round(time.Millisecond))

	// A model the plugin cannot load stops the service here, rather than
	// failing every tenant's first request.
	svc, err := newService(ctx, h, *modelPath, serviceOptions{MaxTenants: *maxTenants, MaxBody: int64(*maxBodyMB) << 20})
	if err != nil {
		h.Close(context.Background())
		log.Fatal(err)
	}
	log.Printf("model %s: %s, %d parameters, context %d", *modelPath, svc.model.Arch, svc.model.Params, svc.model.Context)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: svc.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("serving on http://%s", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
	svc.closeAll(context.Background())
}
