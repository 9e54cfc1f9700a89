package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/graft-ml/graft/native/host"
)

var tenantID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// serviceOptions are the service's limits.
type serviceOptions struct {
	MaxTenants int   // instances at once
	MaxBody    int64 // bytes of a request body (training data included)
}

// service maps tenants to their plugin instances.
type service struct {
	h         *host.Host
	gguf      []byte
	modelName string         // the model file's name, for the guest's errors
	model     host.ModelInfo // the model as the plugin loaded it at start-up
	limits    requestLimits  // what a request must fit in, checked before the plugin sees it
	opt       serviceOptions

	mu      sync.Mutex
	tenants map[string]*host.Instance
}

// newService reads the model file and loads it once into a throw-away
// instance, so that a file the plugin cannot load (missing, not GGUF,
// truncated, too large for the memory cap) is an error naming it now,
// not a failure of every tenant's first request.
func newService(ctx context.Context, h *host.Host, modelPath string, opt serviceOptions) (*service, error) {
	gguf, err := os.ReadFile(modelPath)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	s := &service{h: h, gguf: gguf, modelName: filepath.Base(modelPath), opt: opt, tenants: map[string]*host.Instance{}}
	probe, err := h.NewInstance(ctx)
	if err != nil {
		return nil, err
	}
	defer probe.Close(ctx)
	if s.model, err = probe.LoadModel(ctx, s.modelName, gguf); err != nil {
		return nil, fmt.Errorf("model %s: the plugin cannot load it: %w", modelPath, err)
	}
	if s.limits, err = limitsOf(modelPath, s.model); err != nil {
		return nil, err
	}
	return s, nil
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
	if len(s.tenants) >= s.opt.MaxTenants {
		return nil, httpError{http.StatusServiceUnavailable, fmt.Errorf("%d tenants already; try later", s.opt.MaxTenants)}
	}
	in, err := s.h.NewInstance(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := in.LoadModel(ctx, s.modelName, s.gguf); err != nil {
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
	if !s.readJSON(w, r, &req) {
		return
	}
	tr := req.TrainRequest
	tr.Adapter, tr.Data, tr.EvalData = "tenant", []byte(req.Data), []byte(req.EvalData)
	tr.Config = req.Config
	// Everything that can be checked without the data's tokens is checked
	// here, before a tenant's instance is started or the plugin tokenizes
	// anything; unset settings take graft train's defaults.
	if err := s.limits.checkTrain(tr); err != nil {
		writeError(w, err)
		return
	}
	// The adapter is the tenant's: a new run replaces the previous one.
	s.serve(w, r, func(ctx context.Context, in *host.Instance) (any, error) {
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
	if !s.readJSON(w, r, &req) {
		return
	}
	if err := s.limits.checkGenerate(req); err != nil {
		writeError(w, err)
		return
	}
	s.serve(w, r, func(ctx context.Context, in *host.Instance) (any, error) { return in.Generate(ctx, req) })
}

func (s *service) eval(w http.ResponseWriter, r *http.Request) {
	var req host.EvalRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	if err := s.limits.checkEval(req); err != nil {
		writeError(w, err)
		return
	}
	req.Logits = false // megabytes of JSON; not what a service client wants
	s.serve(w, r, func(ctx context.Context, in *host.Instance) (any, error) { return in.Eval(ctx, req) })
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

// readJSON decodes the request body into v, answering 413 for a body over
// the service's limit and 400 for one that is not the JSON v wants.
func (s *service) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	tooLarge := httpError{http.StatusRequestEntityTooLarge,
		fmt.Errorf("request body is over the limit of %s (-max-body-mb)", mebibytes(s.opt.MaxBody))}
	if r.ContentLength > s.opt.MaxBody {
		writeError(w, tooLarge)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.opt.MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		if _, over := errors.AsType[*http.MaxBytesError](err); over {
			writeError(w, tooLarge)
			return false
		}
		writeError(w, httpError{http.StatusBadRequest, fmt.Errorf("request body: %w", err)})
		return false
	}
	return true
}

// mebibytes writes a byte count as MiB, or as bytes below one.
func mebibytes(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
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
