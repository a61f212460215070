package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// waitReady polls base's /readyz until it answers 200, for at most a
// minute; the error names the log to read.
func waitReady(base, logName string) error {
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bridge %s not ready; see %s", base, logName)
		}
	}
}

// adminPost creates an admin object (POST path with body, 201 expected)
// at base with the load tool's admin token.
func adminPost(base, path, body string) error {
	req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return nil
}
