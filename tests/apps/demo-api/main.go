// demo-api: the application AEGIS's real-node tests and demo run. Small, static, and honest about its
// failures, so that every incident the tests provoke is the process's own doing:
//
//   - DATABASE_URL is required: without it the process logs why and exits 1 (a crash loop from a
//     missing setting).
//   - ALLOCATE_MIB=N touches N MiB at start and keeps it (above the memory limit: a real OOM kill).
//   - PORT (default 8080) is where it listens.
//   - FAIL_AFTER=<RFC 3339 time>: a process started after that moment exits 1 — a latent fault that
//     shows only later (an expired certificate, a flag day), for a fix that passes in the shadow and
//     breaks in production.
//   - GET /healthz (liveness), GET /readyz and /ready (readiness), GET / (who it is: APP_VERSION, which
//     the image sets).
//
// On SIGTERM it stops listening and exits 0, as a well-behaved pod does.
//
// `demo-api probe connect HOST:PORT...` is a client instead, with the contract of `aegis probe connect`
// (the isolation probe AEGIS runs inside a shadow): it tries a TCP connection to each address (2 s
// each, every second for 30 s; only the end counts: reached if the last try reached, blocked if the
// last three failed, so an enforcer's rules have time to land), writes `reached ADDR` or `blocked ADDR: why` per line to stdout and /dev/termination-log, and
// exits 0. The harness cannot build AEGIS's own image (no Docker engine), so the tests use this one.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// held keeps the allocated memory reachable, so the collector cannot give it back.
var held [][]byte

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "demo-api: fatal: "+format+"\n", args...)
	os.Exit(1)
}

// settle is how long each address is tried, once a second. A NetworkPolicy enforcer programs a new
// pod's rules, and adds it to the sets other pods' rules name, some time after the pod starts —
// seconds on a busy node — and until then it may let everything through or reject everything
// (kube-router does the latter). So only the state when the window ends counts: reached if the last
// try reached, blocked if the last blockedInARow tries failed; an address still changing then is
// tried on until one of the two holds.
const (
	settle        = 30 * time.Second
	blockedInARow = 3
)

func connect(addrs []string) {
	lines := make([]string, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			failed, tries, lastReached := 0, 0, 0
			var lastErr error
			for {
				tries++
				conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
				if err == nil {
					conn.Close()
					failed = 0
					lastReached = tries
				} else {
					failed++
					lastErr = err
				}
				if time.Since(start) >= settle {
					if failed == 0 {
						lines[i] = fmt.Sprintf("reached %s", addr)
						return
					}
					if failed >= blockedInARow {
						lines[i] = fmt.Sprintf("blocked %s: %v", addr, lastErr)
						if lastReached > 0 {
							lines[i] += fmt.Sprintf(" (reached by try %d of %d, while the rules landed)", lastReached, tries)
						}
						return
					}
				}
				time.Sleep(time.Second)
			}
		}()
	}
	wg.Wait()
	out := strings.Join(lines, "\n") + "\n"
	fmt.Print(out)
	// Inside a pod the kubelet copies this file into the pod's status; elsewhere it may not exist.
	_ = os.WriteFile("/dev/termination-log", []byte(out), 0o644)
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "probe" && os.Args[2] == "connect" {
		connect(os.Args[3:])
		return
	}
	version := os.Getenv("APP_VERSION")
	if os.Getenv("DATABASE_URL") == "" {
		fatal("required setting DATABASE_URL is not set")
	}
	if v := os.Getenv("FAIL_AFTER"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			fatal("FAIL_AFTER=%q is not an RFC 3339 time", v)
		}
		if time.Now().After(t) {
			fatal("started after FAIL_AFTER=%s", v)
		}
	}
	if v := os.Getenv("ALLOCATE_MIB"); v != "" {
		mib, err := strconv.Atoi(v)
		if err != nil || mib < 0 {
			fatal("ALLOCATE_MIB=%q is not a number of MiB", v)
		}
		for i := 0; i < mib; i++ {
			chunk := make([]byte, 1<<20)
			for j := range chunk {
				chunk[j] = byte(j)
			}
			held = append(held, chunk)
		}
		fmt.Printf("demo-api: holding %d MiB\n", mib)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}

	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	mux.HandleFunc("GET /ready", ok)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"service": "demo-api", "version": version})
	})
	server := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		server.Shutdown(ctx)
	}()
	fmt.Printf("demo-api %s listening on :%s\n", version, port)
	if err := server.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fatal("%v", err)
	}
}
