// Package prompt asks the user questions on a terminal.
package prompt

import (
	"errors"
	"fmt"
	"io"

	"github.com/AlecAivazis/survey/v2"
	"github.com/AlecAivazis/survey/v2/terminal"
)

// ErrInterrupted is returned when the user pressed Ctrl-C at a prompt.
var ErrInterrupted = errors.New("interrupted")

// Prompter asks questions. Implementations exist for a real terminal
// (survey) and for tests.
type Prompter interface {
	// Select asks to pick one of options; def is preselected when not empty.
	Select(message string, options []string, def string) (string, error)
	// Input asks for free text; def is used when the answer is empty.
	// validate, when not nil, is called on the answer and its error shown.
	Input(message, def string, validate func(string) error) (string, error)
	// Password asks for a secret without echoing it.
	Password(message string) (string, error)
}

// Survey prompts on the terminal behind in and out.
type Survey struct {
	In     terminal.FileReader
	Out    terminal.FileWriter
	ErrOut io.Writer
}

// NewSurvey returns a Prompter on the given streams, which must be files
// (terminals).
func NewSurvey(in io.Reader, out, errOut io.Writer) (*Survey, error) {
	r, ok := in.(terminal.FileReader)
	if !ok {
		return nil, errors.New("stdin is not a terminal")
	}
	w, ok := out.(terminal.FileWriter)
	if !ok {
		return nil, errors.New("stdout is not a terminal")
	}
	return &Survey{In: r, Out: w, ErrOut: errOut}, nil
}

func (s *Survey) opts() survey.AskOpt { return survey.WithStdio(s.In, s.Out, s.ErrOut) }

// Select implements Prompter.
func (s *Survey) Select(message string, options []string, def string) (string, error) {
	q := &survey.Select{Message: message, Options: options}
	if def != "" {
		q.Default = def
	}
	var answer string
	err := survey.AskOne(q, &answer, s.opts())
	return answer, wrap(err)
}

// Input implements Prompter.
func (s *Survey) Input(message, def string, validate func(string) error) (string, error) {
	q := &survey.Input{Message: message, Default: def}
	var answer string
	var opts = []survey.AskOpt{s.opts()}
	if validate != nil {
		opts = append(opts, survey.WithValidator(func(v any) error {
			str, _ := v.(string)
			return validate(str)
		}))
	}
	err := survey.AskOne(q, &answer, opts...)
	return answer, wrap(err)
}

func wrap(err error) error {
	if errors.Is(err, terminal.InterruptErr) {
		return ErrInterrupted
	}
	if err != nil {
		return fmt.Errorf("prompt: %w", err)
	}
	return nil
}

// Password implements Prompter.
func (s *Survey) Password(message string) (string, error) {
	var answer string
	err := survey.AskOne(&survey.Password{Message: message}, &answer, s.opts())
	return answer, wrap(err)
}
