// Command browser serves the in-browser fine-tuning demo on 127.0.0.1:
// the page (web/), the npm package with graft.wasm (bindings/js) and the
// bundled stories260K model. Run it from the repository root, after
// building graft.wasm, with `make serve-demo`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen `address`; port 0 picks a free one")
	root := flag.String("root", ".", "the repository `root`")
	flag.Parse()
	if err := run(*addr, *root); err != nil {
		fmt.Fprintln(os.Stderr, "serve-demo:", err)
		os.Exit(1)
	}
}

func run(addr, root string) error {
	h, err := newHandler(root)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The line tests wait for: it carries the chosen port.
	fmt.Printf("graft demo: http://%s/\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHandler maps the site: / is the page, /graft/ the npm package and
// /models/ the bundled models. It checks that graft.wasm was built, since
// the page is useless without it.
func newHandler(root string) (http.Handler, error) {
	wasm := filepath.Join(root, "bindings", "js", "dist", "graft.wasm")
	if _, err := os.Stat(wasm); err != nil {
		return nil, fmt.Errorf("%s is missing: run make wasm-browser first (%w)", wasm, err)
	}
	// Some systems' mime tables lack these; browsers need them exactly.
	mime.AddExtensionType(".wasm", "application/wasm")
	mime.AddExtensionType(".js", "text/javascript")
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(filepath.Join(root, "examples", "browser", "web"))))
	mux.Handle("/graft/", http.StripPrefix("/graft/", http.FileServer(http.Dir(filepath.Join(root, "bindings", "js")))))
	mux.Handle("/models/", http.StripPrefix("/models/", http.FileServer(http.Dir(filepath.Join(root, "models")))))
	return logged(noCache(mux)), nil
}

// noCache keeps a rebuilt graft.wasm from being shadowed by a cached one.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("GRAFT_DEMO_QUIET") == "" {
			log.Printf("%s %s", r.Method, r.URL.Path)
		}
		h.ServeHTTP(w, r)
	})
}
