package cmdutil

import (
	"os"
	"testing"
	"time"
)

func TestInterruptsFirstCancelsSecondQuitsThenExits(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	in := watchInterrupts(sigs, 0, func(code int) { exited <- code })
	defer in.Stop()
	select {
	case <-in.Ctx.Done():
		t.Fatal("the context ended before any interrupt")
	case <-in.Quit:
		t.Fatal("quit before any interrupt")
	default:
	}
	sigs <- os.Interrupt
	<-in.Ctx.Done()
	select {
	case <-in.Quit:
		t.Fatal("the first interrupt quit")
	default:
	}
	sigs <- os.Interrupt
	<-in.Quit
	if code := <-exited; code != ExitInterrupted {
		t.Errorf("exit code %d, want %d", code, ExitInterrupted)
	}
}

func TestInterruptsACommandThatEndsInTheGraceIsNotCut(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	in := watchInterrupts(sigs, time.Hour, func(int) { t.Error("exited while the command was ending") })
	sigs <- os.Interrupt
	sigs <- os.Interrupt
	<-in.Quit
	in.Stop() // the command returned: main exits with its code
}
