;;; redo.el --- Build with redo through compile  -*- lexical-binding: t -*-

;; Version: 1
;; Package-Requires: ((emacs "26.1"))
;; Keywords: tools, processes

;;; Commentary:

;; `M-x redo-compile' runs `redo-ifchange TARGETS' in a compilation buffer, `M-x redo-watch'
;; runs `redo --watch TARGETS' there (a build, then one more each time an input is saved,
;; until `C-c C-k').  `next-error' (`M-g n') then visits:
;;
;; * compiler messages, `file:line:col: error|warning|note: message', also when redo puts
;;   `[target] ' before them (it does when several jobs may run at once, `-j' > 1);
;; * redo's failure lines, `err  . target (../default.o.do) (0.012s): exit status 1': the
;;   .do file (its path is relative to the target's directory, as redo prints it).
;;
;; Compiler paths are relative to the directory of the .do that ran the compiler; the
;; compilation buffer's directory is where you started the command (normally the project
;; root, next to the .do files).  See README.md.

;;; Code:

(require 'compile)

(defgroup redo nil
  "Build with redo."
  :group 'tools
  :prefix "redo-")

(defcustom redo-program "redo"
  "The redo command (used for `redo --watch')."
  :type 'string)

(defcustom redo-ifchange-program "redo-ifchange"
  "The redo-ifchange command (used by `redo-compile')."
  :type 'string)

(defcustom redo-default-targets "all"
  "Targets offered by `redo-compile' and `redo-watch'."
  :type 'string)

(defcustom redo-environment '("NO_COLOR=1" "REDO_NO_STATUS=1")
  "Variables set for redo (through `env', so that `recompile' keeps them).
`compile' runs commands in a pseudo-terminal; redo would then colour its lines and draw a
status line, which the error regexps would not see through."
  :type '(repeat string))

(defconst redo-err-regexp
  (concat "^err  \\(?:\\. \\)*"
          "\\(?1:[^ \n][^\n]*?\\) "                ; the target
          "(\\(?2:[^()\n]+\\.do\\))"               ; its .do, relative to the target's directory
          "\\(?: ([0-9.]+s)\\)?"                   ; how long it ran
          ": \\(?3:.*\\)$")                        ; what went wrong
  "redo's failure line: `err  . target (x.do) (0.012s): exit status 1'.")

(defconst redo-prefixed-gnu-regexp
  (concat "^\\[[^]\n]+\\] "                         ; `[target] ', with -j > 1
          "\\(?1:[^ \t\n:\"{}[]\\(?:[^\n:]*[^\n: ]\\)?\\)"
          ":\\(?2:[0-9]+\\)\\(?::\\(?3:[0-9]+\\)\\)?: "
          "\\(?:\\(?4:warning\\)\\|\\(?5:note\\)\\|\\(?:fatal \\)?error\\):")
  "A compiler message relayed by redo with its `[target] ' prefix.")

(defun redo--err-file ()
  "The .do of a matched `err' line, relative to the compilation directory."
  (let* ((target (match-string-no-properties 1))
         (do (match-string-no-properties 2))
         (dir (file-name-directory target)))
    (list (if dir
              (file-relative-name (expand-file-name do (expand-file-name dir))
                                  default-directory)
            do))))

(defun redo--register ()
  "Teach `compile' redo's output (idempotent)."
  (dolist (entry `((redo-err ,redo-err-regexp redo--err-file nil nil 2 nil
                             (1 compilation-error-face))
                   (redo-gnu ,redo-prefixed-gnu-regexp 1 2 3 (4 . 5))))
    (setq compilation-error-regexp-alist-alist
          (cons entry (assq-delete-all (car entry)
                                       compilation-error-regexp-alist-alist))))
  (dolist (name '(redo-gnu redo-err))
    (unless (memq name compilation-error-regexp-alist)
      (setq compilation-error-regexp-alist
            (cons name compilation-error-regexp-alist)))))

(redo--register)

(defun redo--read-targets (prompt)
  (read-string prompt redo-default-targets nil redo-default-targets))

(defun redo--command (program &rest args)
  "The shell command running PROGRAM with ARGS (already shell words) in `redo-environment'."
  (mapconcat #'identity
             (append (when redo-environment
                       (cons "env" (mapcar #'shell-quote-argument redo-environment)))
                     (list (shell-quote-argument program))
                     args)
             " "))

;;;###autoload
(defun redo-compile (targets)
  "Bring TARGETS up to date with `redo-ifchange', through `compile'."
  (interactive (list (redo--read-targets "redo-ifchange: ")))
  (compile (redo--command redo-ifchange-program targets)))

;;;###autoload
(defun redo-watch (targets)
  "Build TARGETS, then again whenever one of their inputs changes (`redo --watch').
The compilation buffer keeps every round; `C-c C-k' stops watching."
  (interactive (list (redo--read-targets "redo --watch: ")))
  (let ((compilation-buffer-name-function (lambda (_mode) "*redo-watch*")))
    (compile (redo--command redo-program "--watch" targets))))

(provide 'redo)
;;; redo.el ends here
