package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/herald-gw/herald"
)

// fastSeeds are bodies the fast path should take, or must leave to
// parseStd, in the shapes producers send.
var fastSeeds = []string{
	`{"entity":"POLICY_ALERT","entityUuid":"a","type":"CREATE","deviceUuid":"d","timestampMs":1711843200000,"durationSec":5.2,"policyAlertTriggers":["MOTION_HUMAN"],"textDescription":"x"}`,
	`[{"entity":"TELEMETRY","telemetry":{"temperature":{"value":23.5,"unit":"°C"}}},{"entity":"DEVICE_STATUS","status":"offline"}]`,
	"{\"entity\":\"A\"}\n{\"entity\":\"B\"}\n",
	"{\"entity\":\"A\"}{\"entity\":\"B\"}",
	`[ {"entity": "A", "org": "5F0C6B2E-4d2a-4c1e-9b7a-2a9d8e4f1c30", "channel": "system"} , {"entity":"B"} ]`,
	`{"entity":"A","textDescription":"a \"quoted\" <b>&amp;</b> \u00e9\n","title":"caf` + "\u00e9\u2028\u2029" + `"}`,
	`{"entity":"A","custom":{"x":[1,-2.5e+3,0,true,false,null,{}],"y":[]},"z":"<>&"}`,
	`{"entity":"A","severity":null,"id":null,"policyAlertTriggers":[null,"X"],"metadata":{}}`,
	`{"entity":"A","entity":"B"}`, `{"entity":"A","entity":null}`, `{"entity":null,"entity":"A"}`,
	`{"entity":"A","k\u0065y":"x"}`, `{"entity":"A","<b>":1}`, `{"entity":"A","é":1}`,
	`{"entity":"A","timestampMs":-0}`, `{"entity":"A","timestampMs":1e3}`, `{"entity":"A","durationSec":1e400}`,
	`{"entity":"A","durationSec":-0.5E-3}`, `{"entity":"A","policyAlertTriggers":["a",1]}`,
	`{"entity":"A","key":"k1","telemetry":{"a":{"b":{"c":[[[]]]}}}}`, `{"entity":"\ud800"}`, "{\"entity\":\"\xff\"}",
	`[{"entity":"A"},]`, `[{"entity":"A"}] [1]`, `[{"entity":"A"} {"entity":"B"}]`, `{"entity":"A"} 5`,
	`{"entity":"A","n":01}`, `{"entity":"A","n":1.}`, `{"entity":"A","n":-}`, `{"entity":"A","s":"\x"}`,
	`{"entity":"A","s":"\u12"}`, "{\"entity\":\"A\",\"s\":\"\t\"}", `{"entity":"A",}`, `{"entity":"A" "b":1}`,
	`{"entity":"A","channel":"nope"}`, `{"entity":"A","org":"other"}`, `{"entity":5}`, `{"entity":""}`,
	"\v{\"entity\":\"A\"}", `{"entity":"ALERT","b":tru}`, `[]`, `[1]`, `[null]`, `null`, `"x"`, ``, `  `,
	// Per-event bounds, at the fuzz test's small limits (2 triggers, 2
	// metrics, names of 8 bytes).
	`{"entity":"A","policyAlertTriggers":["a","b"]}`, `{"entity":"A","policyAlertTriggers":["a","b","c"]}`,
	`{"entity":"A","policyAlertTriggers":[null,null,null]}`, `{"entity":"A","policyAlertTriggers":[ "abcdefgh" , null ]}`,
	`{"entity":"A","policyAlertTriggers":["abcdefghi"]}`, `{"entity":"A","policyAlertTriggers":["\u00e9\u00e9\u00e9\u00e9"]}`,
	`{"entity":"A","policyAlertTriggers":["\u00e9\u00e9\u00e9\u00e9\u00e9"]}`, `{"entity":"A","policyAlertTriggers":["éé","a\"b,c"]}`,
	"{\"entity\":\"A\",\"policyAlertTriggers\":[\"\xff\xff\"]}", "{\"entity\":\"A\",\"policyAlertTriggers\":[\"\xff\xff\xff\"]}",
	`{"entity":"T","telemetry":{"a":1,"b":{"c":[1,{"d":2,"e":3}],"f":4}}}`, `{"entity":"T","telemetry":{"a":1,"b":2,"c":3}}`,
	`{"entity":"T","telemetry":{"a":1,"a":2}}`, `{"entity":"T","telemetry":{"a":1,"a":2,"a":3}}`, `{"entity":"T","telemetry":{"abcdefghi":1}}`,
	`{"entity":"T","telemetry":{ "a\",b" : [",\"{", "}"] , "c{" : "d,\"e\":1" }}`, `{"entity":"T","telemetry":{"\u0061bcdefgh":1}}`,
	"{\"entity\":\"T\",\"telemetry\":{\"\xff\xff\xff\":1}}", `{"entity":"T","telemetry":{"ab":{"cdefghijkl":1,"m":2,"n":3}}}`,
	`{"entity":"S","metrics":{"a":1,"b":2,"c":3}}`, `{"entity":"S","metrics":{"a":1}}`, `{"entity":"S","metrics":[1,2,3]}`,
	`{"entity":"S","metrics":"abcdefghijk"}`, `{"entity":"S","metrics":{"abcdefghi":[]}}`,
}

// fuzzLimits are small, so that short inputs reach every bound.
func fuzzLimits(maxEvents int) Limits {
	return Limits{MaxEvents: maxEvents%5 + 1, MaxStringBytes: 16, MaxTriggers: 2, MaxMetrics: 2, MaxNameBytes: 8}.withDefaults()
}

// FuzzParseFastPath checks that the fast path never disagrees with
// parseStd: whatever it accepts, parseStd accepts with the same records,
// byte for byte.
func FuzzParseFastPath(f *testing.F) {
	for _, seed := range fastSeeds {
		f.Add([]byte(seed), 3)
	}
	f.Fuzz(func(t *testing.T, body []byte, maxEvents int) {
		limits := fuzzLimits(maxEvents)
		fast, ok := fastParse(body, org, 7, limits)
		if !ok {
			return
		}
		std, err := parseStd(body, org, 7, limits)
		if err != nil {
			t.Fatalf("fast path accepted what parseStd rejects (%v): %q", err, body)
		}
		if diff := compareRecords(fast, std); diff != "" {
			t.Fatalf("fast path and parseStd differ on %q: %s", body, diff)
		}
	})
}

func compareRecords(fast, std []herald.Record) string {
	if len(fast) != len(std) {
		return fmt.Sprintf("%d records, parseStd %d", len(fast), len(std))
	}
	for i := range fast {
		a, b := fast[i], std[i]
		if !bytes.Equal(a.Data, b.Data) {
			return fmt.Sprintf("record %d data\n fast %s\n std  %s", i, a.Data, b.Data)
		}
		if a.Org != b.Org || a.Channel != b.Channel || a.Entity != b.Entity || a.DeviceUUID != b.DeviceUUID ||
			a.EntityUUID != b.EntityUUID || a.Key != b.Key {
			return fmt.Sprintf("record %d\n fast %+v\n std  %+v", i, a, b)
		}
	}
	return ""
}

// TestFastPathTaken makes sure the bodies producers usually send do not
// fall back to encoding/json, and agree with it.
func TestFastPathTaken(t *testing.T) {
	var batch []map[string]any
	for i := range 50 {
		batch = append(batch, map[string]any{
			"entity": "POLICY_ALERT", "type": "CREATE", "entityUuid": fmt.Sprint("policy-", i), "deviceUuid": "camera-1",
			"durationSec": 5.2, "policyAlertTriggers": []string{"MOTION_HUMAN"}, "textDescription": "Person <near> entrance",
			"telemetry": map[string]any{"temperature": map[string]any{"value": 23.5, "unit": "°C"}}, "key": fmt.Sprint("k", i),
		})
	}
	compact, _ := json.Marshal(batch)
	indented, _ := json.MarshalIndent(batch, "", "  ")
	python := strings.ReplaceAll(strings.ReplaceAll(string(compact), `":`, `": `), `,"`, `, "`)
	var ndjson bytes.Buffer
	for _, e := range batch {
		line, _ := json.Marshal(e)
		ndjson.Write(line)
		ndjson.WriteByte('\n')
	}
	for name, body := range map[string][]byte{
		"compact": compact, "indented": indented, "python": []byte(python), "ndjson": ndjson.Bytes(), "seed": []byte(fastSeeds[0]),
	} {
		t.Run(name, func(t *testing.T) {
			limits := Limits{}.withDefaults()
			fast, ok := fastParse(body, org, 7, limits)
			if !ok {
				t.Fatal("fell back to encoding/json")
			}
			std, err := parseStd(body, org, 7, limits)
			if err != nil {
				t.Fatal(err)
			}
			if diff := compareRecords(fast, std); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	batch := make([]map[string]any, 1000)
	for i := range batch {
		batch[i] = map[string]any{"entity": "POLICY_ALERT", "type": "CREATE", "entityUuid": fmt.Sprint("bench-", i),
			"deviceUuid": "9d1e0f7a-1111-4c2b-8a3e-000000000001", "durationSec": 5.2, "policyAlertTriggers": []string{"MOTION_HUMAN"},
			"textDescription": "Person detected near entrance"}
	}
	body, _ := json.Marshal(batch)
	for _, impl := range []struct {
		name  string
		parse func([]byte, string, int64, Limits) ([]herald.Record, error)
	}{{"Parse", Parse}, {"parseStd", parseStd}} {
		b.Run(impl.name, func(b *testing.B) {
			limits := Limits{}.withDefaults()
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := impl.parse(body, org, 7, limits); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(batch)*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
