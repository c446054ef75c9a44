package jsrt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dop251/goja"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/httprt"
)

// Bounds of ctx.fetch.
const (
	MaxFetches          = 8         // calls per invocation
	MaxFetchBodyBytes   = 1 << 20   // response body read into the VM
	MaxFetchSendBytes   = 256 << 10 // request body
	MaxFetchHeaderBytes = 16 << 10  // request header names and values together
	MaxFetchRedirects   = 3
)

// newFetchClient returns the client of ctx.fetch: it never follows a
// redirect to a host off the function's allow-list (read from the
// request's context) nor more than MaxFetchRedirects, and unless
// allowPrivate it dials only public addresses, checked after DNS
// resolution with the HTTP runtime's guard.
func newFetchClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	proxy := http.ProxyFromEnvironment
	if !allowPrivate {
		d.ControlContext = httprt.PublicOnly
		proxy = nil // a proxy would make the dial check meaningless
	}
	t := &http.Transport{
		Proxy: proxy, DialContext: d.DialContext,
		MaxIdleConns: 64, MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second,
		ForceAttemptHTTP2: true, MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{Transport: t, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > MaxFetchRedirects {
			return fmt.Errorf("%w: more than %d redirects", fnrt.ErrFetchLimit, MaxFetchRedirects)
		}
		if allowed, _ := req.Context().Value(allowKey{}).(func(*url.URL) error); allowed != nil {
			return allowed(req.URL)
		}
		return nil
	}}
}

type allowKey struct{}

// hostAllowed checks u against the function's allow_hosts: an entry is a
// host name or address, or "*.example.com" for its subdomains.
func (in *instance) hostAllowed(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q (want http or https)", fnrt.ErrFetchRefused, u.Scheme)
	}
	h := strings.ToLower(u.Hostname())
	for _, a := range in.allowHosts {
		if a == h || strings.HasPrefix(a, "*.") && strings.HasSuffix(h, a[1:]) {
			return nil
		}
	}
	return fmt.Errorf("%w: host %q is not in the function's allow_hosts", fnrt.ErrFetchRefused, h)
}

// jsFetch is ctx.fetch(url, {method, headers, body, timeout}): it makes the
// request synchronously, within the invocation's remaining time, and
// returns a settled promise of a response {status, ok, url, headers,
// text(), json()}. A network error or the call's own timeout rejects the
// promise; a refused host or address and a limit stop the invocation.
func (v *vmState) jsFetch(call goja.FunctionCall) goja.Value {
	vm := v.vm
	v.fetches++
	if v.fetches > MaxFetches {
		v.fetchFail(fmt.Errorf("%w: more than %d calls in one invocation", fnrt.ErrFetchLimit, MaxFetches))
	}
	raw, ok := call.Argument(0).Export().(string)
	if !ok {
		v.fetchFail(errors.New("url must be a string"))
	}
	u, err := url.Parse(raw)
	if err != nil {
		v.fetchFail(fmt.Errorf("url %q is not a URL", fnrt.Truncate(raw, 200)))
	}
	if err := v.in.hostAllowed(u); err != nil {
		v.fetchFail(err)
	}
	method, body, header, timeout := "GET", "", http.Header{}, time.Duration(0)
	if o, ok := call.Argument(1).(*goja.Object); ok {
		if m := o.Get("method"); m != nil && !goja.IsUndefined(m) {
			method = strings.ToUpper(m.String())
			switch method {
			case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
			default:
				v.fetchFail(fmt.Errorf("method %q is not supported", fnrt.Truncate(method, 20)))
			}
		}
		if h, ok := o.Get("headers").(*goja.Object); ok {
			size := 0
			for _, k := range h.Keys() {
				val := h.Get(k).String()
				size += len(k) + len(val)
				if size > MaxFetchHeaderBytes {
					v.fetchFail(fmt.Errorf("%w: request headers over %d bytes", fnrt.ErrFetchLimit, MaxFetchHeaderBytes))
				}
				header.Set(k, val)
			}
		}
		if b := o.Get("body"); b != nil && !goja.IsUndefined(b) && !goja.IsNull(b) {
			if s, ok := b.Export().(string); ok {
				body = s
			} else {
				out, ok, err := v.serialize(b, MaxFetchSendBytes, nil, nil)
				if errors.Is(err, errJSONSize) {
					v.fetchFail(fmt.Errorf("%w: request body over %d bytes", fnrt.ErrFetchLimit, MaxFetchSendBytes))
				}
				if err != nil || !ok {
					v.fetchFail(errors.New("body must be a string or a JSON value"))
				}
				body = string(out)
				if header.Get("Content-Type") == "" {
					header.Set("Content-Type", "application/json")
				}
			}
			if len(body) > MaxFetchSendBytes {
				v.fetchFail(fmt.Errorf("%w: request body over %d bytes", fnrt.ErrFetchLimit, MaxFetchSendBytes))
			}
		}
		if t := o.Get("timeout"); t != nil && !goja.IsUndefined(t) {
			ms := t.ToFloat()
			if !(ms > 0) {
				v.fetchFail(errors.New("timeout must be a positive number of milliseconds"))
			}
			timeout = time.Duration(ms * float64(time.Millisecond))
		}
	}

	// The call gets what is left of the invocation, or its own timeout if
	// shorter: running out of the first is the invocation's timeout, of
	// the second a rejected promise.
	deadline := v.deadline
	own := timeout > 0 && time.Now().Add(timeout).Before(deadline)
	if own {
		deadline = time.Now().Add(timeout)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	ctx = context.WithValue(ctx, allowKey{}, v.in.hostAllowed)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		v.fetchFail(err)
	}
	req.Header = header
	resp, err := v.in.fetch.Do(req)
	var data []byte
	if err == nil {
		limit := min(MaxFetchBodyBytes, v.in.limits.maxBytes/4)
		data, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
		resp.Body.Close()
		if err == nil && int64(len(data)) > limit {
			v.fetchFail(fmt.Errorf("%w: response body over %d bytes", fnrt.ErrFetchLimit, limit))
		}
	}
	p, resolve, reject := vm.NewPromise()
	switch {
	case err == nil:
		_ = resolve(v.fetchResponse(resp, data))
	case errors.Is(err, fnrt.ErrFetchRefused), errors.Is(err, fnrt.ErrFetchLimit):
		v.fetchFail(err)
	case errors.Is(err, httprt.ErrPrivateAddress):
		v.fetchFail(fmt.Errorf("%w: %w", fnrt.ErrFetchRefused, httprt.ErrPrivateAddress))
	case ctx.Err() != nil && !own:
		v.fail = fmt.Errorf("ctx.fetch: %w: no answer within the invocation's time", fnrt.ErrTimeout)
		v.stop()
	case ctx.Err() != nil:
		_ = reject(vm.NewGoError(fmt.Errorf("fetch %s: timed out after %v", u.Redacted(), timeout)))
	default:
		_ = reject(vm.NewGoError(fmt.Errorf("fetch %s: %v", u.Redacted(), unwrapURLError(err))))
	}
	return vm.ToValue(p)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (v *vmState) fetchResponse(resp *http.Response, data []byte) *goja.Object {
	vm := v.vm
	r := vm.NewObject()
	_ = r.Set("status", resp.StatusCode)
	_ = r.Set("ok", resp.StatusCode >= 200 && resp.StatusCode < 300)
	_ = r.Set("url", resp.Request.URL.String())
	h := vm.NewObject()
	for k, vals := range resp.Header {
		_ = h.Set(strings.ToLower(k), strings.Join(vals, ", "))
	}
	_ = r.Set("headers", h)
	text := string(data)
	_ = r.Set("text", func(goja.FunctionCall) goja.Value {
		p, resolve, _ := vm.NewPromise()
		_ = resolve(text)
		return vm.ToValue(p)
	})
	_ = r.Set("json", func(goja.FunctionCall) goja.Value {
		p, resolve, reject := vm.NewPromise()
		if val, err := v.parseJSON(data); err != nil {
			_ = reject(err)
		} else if len(data) == 0 {
			_ = reject(vm.NewGoError(errors.New("response body is empty")))
		} else {
			_ = resolve(val)
		}
		return vm.ToValue(p)
	})
	return r
}

// fetchFail stops the invocation like kvFail.
func (v *vmState) fetchFail(err error) {
	v.fail = fmt.Errorf("ctx.fetch: %w", err)
	v.stop()
}

// stop interrupts the invocation after a failure was recorded in v.fail:
// the thrown error could be caught, the interrupt cannot. The interrupt
// may still be pending when the call ends, so the VM is retired.
func (v *vmState) stop() {
	v.broken = true
	v.vm.Interrupt(v.fail)
	panic(v.vm.NewGoError(v.fail))
}
