module helm_render

go 1.19
