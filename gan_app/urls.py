app_name = "gan"

urlpatterns = []
