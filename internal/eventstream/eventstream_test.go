package eventstream

import (
	"strings"
	"testing"
)

func TestCheckType(t *testing.T) {
	tests := []struct {
		typ     string
		pattern bool
		want    string // a part of the error; "": none
	}{
		{"com.example.image.uploaded", false, ""},
		{ScheduleType, false, ""},
		{"com.example.*", true, ""},
		{"*", true, ""},
		{"com.example.*", false, "spaces, * or >"},
		{"*", false, "spaces, * or >"},
		{"", false, "is empty"},
		{".*", true, "is empty"},
		{"com..example", true, "empty part"},
		{"com.example.", false, "empty part"},
		{"com.*.image", true, "only as its last part"},
		{"com.ex*", true, "only as its last part"},
		{"com.example>", false, "spaces, * or >"},
		{"com.my example", true, "spaces, * or >"},
	}
	for _, tc := range tests {
		err := CheckType(tc.typ, tc.pattern)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckType(%q, %t) = %v, want none", tc.typ, tc.pattern, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckType(%q, %t) = %v, want one saying %q", tc.typ, tc.pattern, err, tc.want)
		}
	}
}

func TestLagIsPendingAndUnanswered(t *testing.T) {
	if l := (TriggerStatus{Pending: 5, AckPending: 3}).Lag(); l != 8 {
		t.Errorf("Lag = %d, want 8", l)
	}
}
