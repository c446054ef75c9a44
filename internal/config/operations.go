package config

import "fmt"

// Bounds of the operations settings: both size memory that every node
// keeps (function_log_lines per function) or work it does per second.
const (
	maxStatusSampleRate = 10_000
	maxFunctionLogLines = 10_000
)

// validateOperations checks the status channel and function log settings.
func (c *Config) validateOperations() error {
	switch {
	case c.StatusSampleRate < 1 || c.StatusSampleRate > maxStatusSampleRate:
		return fmt.Errorf("status_sample_rate: must be 1-%d events per second, got %d", maxStatusSampleRate, c.StatusSampleRate)
	case c.FunctionLogLines < 1 || c.FunctionLogLines > maxFunctionLogLines:
		return fmt.Errorf("function_log_lines: must be 1-%d, got %d", maxFunctionLogLines, c.FunctionLogLines)
	}
	return nil
}
