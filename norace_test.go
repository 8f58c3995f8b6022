//go:build !race

package herald

const raceEnabled = false
