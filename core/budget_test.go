package core

import (
	"context"
	"testing"
)

func TestStreamBudget(t *testing.T) {
	b := NewStreamBudget(100)
	if !b.Take(60, false) || b.Take(50, false) || b.Used() != 60 {
		t.Fatalf("after 60 of 100, 50 more: used %d", b.Used())
	}
	// A stream's first item goes through over the limit.
	if !b.Take(50, true) || b.Used() != 110 {
		t.Fatalf("first item: used %d", b.Used())
	}
	b.Release(110)
	if b.Used() != 0 || !b.Take(100, false) {
		t.Fatalf("after release: used %d", b.Used())
	}
	var none *StreamBudget
	if !none.Take(1<<40, false) || none.Used() != 0 {
		t.Fatal("a nil budget has a limit")
	}
	none.Release(1)
	ctx := WithStreamBudget(context.Background(), b)
	if StreamBudgetFrom(ctx) != b || StreamBudgetFrom(context.Background()) != nil {
		t.Fatal("the budget does not travel in the context")
	}
}
