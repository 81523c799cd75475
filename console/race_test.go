//go:build race

package console_test

// raceEnabled slows everything several times over: the scale test's time
// bounds stretch, and a count of 100,000 letters may stop at its limit.
const raceEnabled = true
