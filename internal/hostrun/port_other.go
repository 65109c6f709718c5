//go:build !linux

package hostrun

// portHolder is empty where skiff cannot tell which process holds a port.
func portHolder(int) string { return "" }
