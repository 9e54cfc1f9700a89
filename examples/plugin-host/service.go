package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"

	"github.com/graft-ml/graft/native/host"
)

// maxBody bounds a request body (training data included).
const maxBody = 32 << 20

var tenantID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// service maps tenants to their plugin instances.
type service struct {
	h          *host.Host
	gguf       []byte
	maxTenants int

	mu      sync.Mutex
	tenants map[string]*host.Instance
}

func newService(h *host.Host, gguf []byte, maxTenants int) *service {
	return &service{h: h, gguf: gguf, maxTenants: maxTenants, tenants: map[string]*host.Instance{}}
}

func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tenants/{id}/train", s.train)
	mux.HandleFunc("POST /tenants/{id}/generate", s.generate)
	mux.HandleFunc("POST /tenants/{id}/eval", s.eval)
	mux.HandleFunc("GET /tenants/{id}/adapter", s.adapter)
	mux.HandleFunc("DELETE /tenants/{id}", s.remove)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.tenants)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]int{"tenants": n, "instances": s.h.Instances()})
	})
	return mux
}

// instance returns the tenant's instance, starting one with the base model
// on first use or after the previous one was lost (deadline, memory).
func (s *service) instance(ctx context.Context, id string) (*host.Instance, error) {
	if !tenantID.MatchString(id) {
		return nil, httpError{http.StatusBadRequest, fmt.Errorf("tenant id %q: use 1 to 64 letters, digits, - or _", id)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in, ok := s.tenants[id]; ok {
		if in.Err() == nil {
			return in, nil
		}
		delete(s.tenants, id)
	}
	if len(s.tenants) >= s.maxTenants {
		return nil, httpError{http.StatusServiceUnavailable, fmt.Errorf("%d tenants already; try later", s.maxTenants)}
	}
	in, err := s.h.NewInstance(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := in.LoadModel(ctx, "base.gguf", s.gguf); err != nil {
		in.Close(ctx)
		return nil, err
	}
	s.tenants[id] = in
	return in, nil
}

func (s *service) train(w http.ResponseWriter, r *http.Request) {
	var req struct {
		host.TrainRequest
		// Text forms of TrainRequest's byte fields.
		Config   json.RawMessage `json:"config"`
		Data     string          `json:"data"`
		EvalData string          `json:"eval_data"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	// The adapter is the tenant's: a new run replaces the previous one.
	s.serve(w, r, func(ctx context.Context, in *host.Instance) (any, error) {
		tr := req.TrainRequest
		tr.Adapter, tr.Data, tr.EvalData = "tenant", []byte(req.Data), []byte(req.EvalData)
		tr.Config = req.Config
		if err := in.UnloadAdapter(ctx, tr.Adapter); err != nil && !errors.Is(err, host.ErrNotFound) {
			return nil, err
		}
		res, err := in.Train(ctx, tr, nil)
		res.Adapter.Trainable = nil // tensor names: long and of no use here
		return res, err
	})
}

func (s *service) generate(w http.ResponseWriter, r *http.Request) {
	var req host.GenerateRequest
	if readJSON(w, r, &req) {
		s.serve(w, r, func(ctx context.Context, in *host.Instance) (any, error) { return in.Generate(ctx, req) })
	}
}

func (s *service) eval(w http.ResponseWriter, r *http.Request) {
	var req host.EvalRequest
	if readJSON(w, r, &req) {
		req.Logits = false // megabytes of JSON; not what a service client wants
		s.serve(w, r, func(ctx context.Context, in *host.Instance) (any, error) { return in.Eval(ctx, req) })
	}
}

func (s *service) adapter(w http.ResponseWriter, r *http.Request) {
	in, err := s.instance(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	bundle, err := in.ExportAdapterBundle(r.Context(), "tenant")
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/msgpack")
	w.Header().Set("Content-Disposition", `attachment; filename="adapter.msgpack"`)
	w.Write(bundle)
}

func (s *service) remove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	in, ok := s.tenants[id]
	delete(s.tenants, id)
	s.mu.Unlock()
	if !ok {
		writeError(w, httpError{http.StatusNotFound, fmt.Errorf("tenant %q has no instance", id)})
		return
	}
	in.Close(r.Context())
	w.WriteHeader(http.StatusNoContent)
}

// closeAll ends every tenant's instance.
func (s *service) closeAll(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, in := range s.tenants {
		in.Close(ctx)
		delete(s.tenants, id)
	}
}

// serve runs one call on the tenant's instance and writes its result.
func (s *service) serve(w http.ResponseWriter, r *http.Request, call func(context.Context, *host.Instance) (any, error)) {
	in, err := s.instance(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := call(r.Context(), in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

type httpError struct {
	status int
	err    error
}

func (e httpError) Error() string { return e.err.Error() }

// writeError maps the host's errors to HTTP statuses.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var he httpError
	switch {
	case errors.As(err, &he):
		status = he.status
	case errors.Is(err, host.ErrBadRequest), errors.Is(err, host.ErrExists):
		status = http.StatusBadRequest
	case errors.Is(err, host.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	case errors.Is(err, host.ErrMemoryLimit):
		status = http.StatusInsufficientStorage
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, httpError{http.StatusBadRequest, fmt.Errorf("request body: %w", err)})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
