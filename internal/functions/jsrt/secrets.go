package jsrt

import (
	"github.com/dop251/goja"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// secretsObject is ctx.secrets: read-only, looked up on each access so a
// secret set or deleted while the function is deployed is seen at once.
type secretsObject struct {
	vm *goja.Runtime
	s  fnrt.Secrets
}

func (o secretsObject) Get(key string) goja.Value {
	if val, ok := o.s.Secret(key); ok {
		return o.vm.ToValue(val)
	}
	return goja.Undefined()
}

func (o secretsObject) Set(string, goja.Value) bool { return false }

func (o secretsObject) Has(key string) bool {
	_, ok := o.s.Secret(key)
	return ok
}

func (o secretsObject) Delete(string) bool { return false }

func (o secretsObject) Keys() []string { return o.s.Names() }

// redact hides secret values in s.
func (in *instance) redact(s string) string {
	if in.cfg.Secrets == nil {
		return s
	}
	return in.cfg.Secrets.Redact(s)
}

// redactedError is an error whose message had secret values masked; it
// still wraps the original so errors.Is finds the named errors (whoever
// prints the unwrapped error sees the value: only the engine's error
// classification unwraps).
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// redactResult masks secret values in what Run returns: the rejection
// reason and the error message, which end up in logs and API answers.
func (in *instance) redactResult(res fnrt.Result, err error) (fnrt.Result, error) {
	if in.cfg.Secrets == nil {
		return res, err
	}
	res.Reason = in.redact(res.Reason)
	if err != nil {
		if msg := in.redact(err.Error()); msg != err.Error() {
			err = &redactedError{msg: msg, cause: err}
		}
	}
	return res, err
}
