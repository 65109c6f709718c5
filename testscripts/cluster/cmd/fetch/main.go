// Command fetch is the smoke test's in-cluster client: it GETs each URL on
// its command line, retrying for a while, prints the bodies and exits 0, or
// exits 1 if one never answered 200.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	client := &http.Client{Timeout: 5 * time.Second}
	for _, url := range os.Args[1:] {
		if err := get(client, url); err != nil {
			fmt.Fprintf(os.Stderr, "fetch %s: %v\n", url, err)
			os.Exit(1)
		}
	}
}

func get(client *http.Client, url string) error {
	var last error
	for range 30 {
		resp, err := client.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				fmt.Printf("%s: %s", url, body)
				return nil
			}
			err = fmt.Errorf("status %s, read error %v", resp.Status, rerr)
		}
		last = err
		fmt.Fprintf(os.Stderr, "fetch %s: %v; retrying\n", url, err)
		time.Sleep(2 * time.Second)
	}
	return last
}
