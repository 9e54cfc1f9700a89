//go:build !linux

package main

import "os"

// peakRSS is unknown off Linux: ru_maxrss has other units on other systems
// (bytes on macOS) or does not exist, and a wrong figure is worse than none.
func peakRSS(*os.ProcessState) int64 { return 0 }
