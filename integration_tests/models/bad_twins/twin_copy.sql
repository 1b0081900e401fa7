-- A "twin" that is the train split itself: memorised rows.
{{ cps1988_train() }}
