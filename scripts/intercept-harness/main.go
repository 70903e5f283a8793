// Command harness replays mcpsim call records through the Intercept gateway's own config
// loader, validator, engine, handler and SQLite store on a fake clock, printing one JSON line
// per call. Usage: harness POLICY.yaml CALLS.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/policylayer/intercept/internal/config"
	"github.com/policylayer/intercept/internal/engine"
	"github.com/policylayer/intercept/internal/proxy"
	"github.com/policylayer/intercept/internal/state"
	"github.com/policylayer/intercept/internal/transport"
)

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

type record struct {
	Ts        string          `json:"ts"`
	Tool      string          `json:"tool"`
	Args      json.RawMessage `json:"args"`
	Upstream  string          `json:"upstream"`
	LatencyMs *float64        `json:"latency_ms"`
}

type reply struct {
	at  time.Time
	seq int
	fn  func(json.RawMessage)
	up  string
}

func main() {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)

	cfg, err := config.Load(os.Args[1])
	if err != nil {
		enc.Encode(map[string]any{"load_error": []string{err.Error()}})
		return
	}
	if errs := config.Validate(cfg); len(errs) > 0 {
		msgs := []string{}
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		enc.Encode(map[string]any{"load_error": msgs})
		return
	}
	dir, _ := os.MkdirTemp("", "icpt")
	defer os.RemoveAll(dir)
	clock := &fakeClock{}
	store, err := state.NewSQLiteStoreWithClock(filepath.Join(dir, "s.sqlite"), clock)
	if err != nil {
		panic(err)
	}
	eng := engine.New(cfg, store)
	h := proxy.New(eng, store, cfg, nil)

	f, err := os.Open(os.Args[2])
	if err != nil {
		panic(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var pending []reply
	seq := 0
	flush := func(upTo time.Time, inclusive bool) {
		sort.SliceStable(pending, func(i, j int) bool {
			if !pending[i].at.Equal(pending[j].at) {
				return pending[i].at.Before(pending[j].at)
			}
			return pending[i].seq < pending[j].seq
		})
		k := 0
		for k < len(pending) && (pending[k].at.Before(upTo) || (inclusive && pending[k].at.Equal(upTo))) {
			p := pending[k]
			clock.now = p.at
			body := `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`
			switch p.up {
			case "error":
				body = `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}`
			case "tool_error":
				body = `{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}`
			}
			p.fn(json.RawMessage(body))
			k++
		}
		pending = pending[k:]
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			panic(err)
		}
		ts, err := time.Parse(time.RFC3339Nano, r.Ts)
		if err != nil {
			panic(err)
		}
		// Replies due at or before this call's time arrive first.
		flush(ts, true)
		clock.now = ts
		params := map[string]json.RawMessage{}
		name, _ := json.Marshal(r.Tool)
		params["name"] = name
		if len(r.Args) > 0 {
			params["arguments"] = r.Args
		}
		p, _ := json.Marshal(params)
		raw := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}`, seq, p)
		evaluated, denied, resp, onResp := transport.HarnessIntercept([]byte(raw), h.Handle)
		res := map[string]any{}
		switch {
		case !evaluated:
			res["decision"] = "forward"
		case denied:
			var body struct {
				Result struct {
					Content []struct{ Text string } `json:"content"`
				} `json:"result"`
			}
			json.Unmarshal(resp, &body)
			res["decision"] = "deny"
			if len(body.Result.Content) > 0 {
				res["message"] = body.Result.Content[0].Text
			}
		default:
			res["decision"] = "allow"
		}
		enc.Encode(res)
		if evaluated && !denied && onResp != nil && r.Upstream != "" {
			at := ts
			if r.LatencyMs != nil {
				at = ts.Add(time.Duration(*r.LatencyMs * float64(time.Millisecond)))
			}
			pending = append(pending, reply{at: at, seq: seq, fn: onResp, up: r.Upstream})
		}
		seq++
	}
}
